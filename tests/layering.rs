//! The dependency rule of `src/lib.rs` as a test: every `crate::MODULE`
//! path in a module's code (outside its tests and comments) must name a
//! module its row of the table allows, so the map cannot drift from the
//! code.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The table in `src/lib.rs`: module → the modules it may use.
fn rule() -> BTreeMap<String, BTreeSet<String>> {
    let lib = fs::read_to_string("src/lib.rs").expect("src/lib.rs");
    let mut rule = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | `") else {
            continue;
        };
        let (module, rest) = row.split_once('`').expect("a module name in backticks");
        let allowed = rest
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        rule.insert(module.to_owned(), allowed);
    }
    rule
}

/// The module a file under `src/` belongs to.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// Files of test code only.
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.ends_with("tests.rs") || name == "test_support.rs" || name == "tests.rs"
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its inline test module and its comments.
fn code(text: &str) -> String {
    let text = match text.find("\n#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate's modules a piece of code names (`crate::x` in the library,
/// `lantalk::x` in the binary).
fn used(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            used.insert(name);
        }
    }
    used
}

#[test]
fn every_module_uses_only_what_the_table_in_lib_rs_allows() {
    let rule = rule();
    assert!(
        rule.len() >= 15,
        "the table in src/lib.rs was not found: {rule:?}"
    );
    // Items at the crate's root (not modules) are open to all.
    let root: BTreeSet<&str> = ["error_chain", "status"].into();
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut broken = Vec::new();
    let mut seen = BTreeSet::new();
    for path in files {
        let module = module_of(&path);
        if module == "lib" || is_test_file(&path) {
            continue;
        }
        seen.insert(module.clone());
        let allowed = rule
            .get(&module)
            .unwrap_or_else(|| panic!("{} is not in the table of src/lib.rs", path.display()));
        let prefix = if module == "main" {
            "lantalk::"
        } else {
            "crate::"
        };
        let text = fs::read_to_string(&path).expect("a readable file");
        for dep in used(&code(&text), prefix) {
            if dep != module && !allowed.contains(&dep) && !root.contains(dep.as_str()) {
                broken.push(format!("{}: {module} uses {dep}", path.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the dependency rule is broken:\n{}",
        broken.join("\n")
    );
    let missing: Vec<&String> = rule.keys().filter(|m| !seen.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "the table names modules that do not exist: {missing:?}"
    );
}

/// The checker itself: it sees a path, and not one in a comment or a test.
#[test]
fn the_checker_finds_paths_outside_tests_and_comments() {
    let text = "use crate::net::Foo;\nlet x = crate::store::open(); // crate::tui\nfn f(){my_crate::ui::x()}\n#[cfg(test)]\nmod tests {\n use crate::app;\n}";
    let found = used(&code(text), "crate::");
    assert_eq!(found, ["net", "store"].map(str::to_owned).into());
}
