//! The config file: `config.toml` in the platform config directory
//! (`~/.config/lantalk/config.toml` on Linux), or the file `--config` names.
//! Read once at start. Flags override it and it overrides the built-in
//! defaults. No file at the usual place is no error; a file that cannot be
//! read or parsed is, naming the file, the line and the column.
//!
//! ```toml
//! name = "laptop"            # --name
//! port = 7342                # --port
//! interfaces = ["eth0"]      # --interface (the flags replace the list)
//! mdns = true                # false: as --no-mdns
//! history = true             # false: as --no-history
//! bell = true                # false: as --no-bell
//! require-encryption = false # true: as --require-encryption
//! web = true                 # false: as --no-web
//!
//! [colours]                  # or [colors]; names, "#rrggbb" or 0-255
//! own = "cyan"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use ratatui::style::Color;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::app::Theme;
use crate::cli::Global;

/// The file's name inside the config directory.
pub const FILE_NAME: &str = "config.toml";

/// What the config file says; `None` where it says nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Display name shown to peers.
    pub name: Option<String>,
    /// TCP port to listen on (0: any free port).
    pub port: Option<u16>,
    /// Network interfaces for mDNS.
    pub interfaces: Option<Vec<String>>,
    /// mDNS discovery on or off.
    pub mdns: Option<bool>,
    /// Keep history or not.
    pub history: Option<bool>,
    /// Ring the bell for messages in conversations not on screen (chat screen).
    pub bell: Option<bool>,
    /// Refuse plaintext and raw sessions.
    pub require_encryption: Option<bool>,
    /// Serve the web client on the listening port.
    pub web: Option<bool>,
    /// Colours of the chat screen, by role.
    #[serde(default, alias = "colors")]
    pub colours: Colours,
}

/// The `[colours]` table: one optional colour per role of [`Theme`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Colours {
    pub own: Option<Colour>,
    pub peer: Option<Colour>,
    pub system: Option<Colour>,
    pub accent: Option<Colour>,
    pub online: Option<Colour>,
    pub offline: Option<Colour>,
    pub delivered: Option<Colour>,
    pub waiting: Option<Colour>,
    pub error: Option<Colour>,
    pub unread: Option<Colour>,
    pub notice: Option<Colour>,
    pub selection: Option<Colour>,
}

/// One colour as written in the file: a name (`green`, `light-blue`,
/// `dark-gray`, `default` for the terminal's own), `"#rrggbb"`, or an index
/// 0–255 of the terminal's palette (a number or a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub Color);

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists (or was named with `--config`) but cannot be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or says something we do not understand.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        message: String,
    },
}

/// Where the config file is when `--config` is not given: `config.toml` in
/// the platform config directory; `None` when there is no home directory.
#[must_use]
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lantalk").map(|dirs| dirs.config_dir().join(FILE_NAME))
}

/// Reads the config: from `given` (`--config FILE`), which must exist, or
/// else from [`default_path`], where no file means an empty config.
pub fn load(given: Option<&Path>) -> Result<Config, ConfigError> {
    let (path, required) = match given {
        Some(path) => (path.to_owned(), true),
        None => match default_path() {
            Some(path) => (path, false),
            None => return Ok(Config::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Config::default());
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    parse(&text, &path)
}

/// Parses the text of a config file; `path` is only for the error message.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column,
            message: one_line(e.message()),
        }
    })?;
    // The name as `--name` takes it.
    if let Some(name) = &config.name {
        let name = crate::cli::parse_name(name).map_err(|why| {
            let at = text
                .lines()
                .position(|l| l.trim_start().starts_with("name"))
                .map_or(1, |i| i + 1);
            ConfigError::Invalid {
                path: path.to_owned(),
                line: at,
                column: 1,
                message: format!("name: {why}"),
            }
        })?;
        config.name = Some(name);
    }
    Ok(config)
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// toml's messages on one line, without a trailing full stop or newline.
fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Config {
    /// Fills in what the command line left out: flags win over the file.
    pub fn fill(&self, global: &mut Global) {
        if global.name.is_none() {
            global.name.clone_from(&self.name);
        }
        if global.port.is_none() {
            global.port = self.port;
        }
        if global.interfaces.is_empty()
            && let Some(interfaces) = &self.interfaces
        {
            global.interfaces.clone_from(interfaces);
        }
        global.no_mdns |= self.mdns == Some(false);
        global.no_history |= self.history == Some(false);
        global.require_encryption |= self.require_encryption == Some(true);
        global.no_web |= self.web == Some(false);
    }

    /// Whether the chat screen rings the bell, unless `--no-bell` says not.
    #[must_use]
    pub fn bell(&self) -> bool {
        self.bell.unwrap_or(true)
    }

    /// The built-in theme with the file's colours in place.
    #[must_use]
    pub fn theme(&self) -> Theme {
        self.theme_for(false)
    }

    /// The file's colours over the built-in theme, or over no colour at all
    /// when `no_color` (`NO_COLOR` is set): a colour the file names is
    /// still used, as no-color.org asks of configuration files.
    #[must_use]
    pub fn theme_for(&self, no_color: bool) -> Theme {
        let c = &self.colours;
        let pick = |set: Option<Colour>, default: Color| set.map_or(default, |c| c.0);
        let d = if no_color {
            Theme::monochrome()
        } else {
            Theme::default()
        };
        Theme {
            own: pick(c.own, d.own),
            peer: pick(c.peer, d.peer),
            system: pick(c.system, d.system),
            accent: pick(c.accent, d.accent),
            online: pick(c.online, d.online),
            offline: pick(c.offline, d.offline),
            delivered: pick(c.delivered, d.delivered),
            waiting: pick(c.waiting, d.waiting),
            error: pick(c.error, d.error),
            unread: pick(c.unread, d.unread),
            notice: pick(c.notice, d.notice),
            selection: pick(c.selection, d.selection),
        }
    }
}

impl std::str::FromStr for Colour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("default") {
            return Ok(Self(Color::Reset));
        }
        // ratatui's names ignore case, spaces, `-` and `_`, and know
        // `bright-*`, `grey`; numbers are palette indexes.
        s.parse::<Color>().map(Self).map_err(|_| {
            format!(
                "unknown colour {s:?}: give a name (green, light-blue, dark-gray, default), \
                 \"#rrggbb\" or a palette index 0-255"
            )
        })
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ColourVisitor;

        impl Visitor<'_> for ColourVisitor {
            type Value = Colour;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a colour name, \"#rrggbb\" or a palette index 0-255")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Colour, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Colour, E> {
                u8::try_from(n)
                    .map(|i| Colour(Color::Indexed(i)))
                    .map_err(|_| E::custom(format!("colour index {n} is not between 0 and 255")))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Colour, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }

        deserializer.deserialize_any(ColourVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("config.toml"))
    }

    fn error(text: &str) -> String {
        parse_str(text)
            .expect_err("the text is not a valid config")
            .to_string()
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let config = parse_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.theme(), Theme::default());
        assert!(config.bell());
    }

    #[test]
    fn every_key() {
        let config = parse_str(
            r##"
            name = "laptop"
            port = 7000
            interfaces = ["eth0", "wlan0"]
            mdns = false
            history = false
            bell = false
            require-encryption = true

            [colours]
            own = "light-blue"
            peer = "#ff8800"
            system = 244
            accent = "Bright Magenta"
            online = "green"
            offline = "grey"
            delivered = "12"
            waiting = "yellow"
            error = "light_red"
            unread = "#00FF00"
            notice = "white"
            selection = "default"
            "##,
        )
        .unwrap();
        assert_eq!(config.name.as_deref(), Some("laptop"));
        assert_eq!(config.port, Some(7000));
        assert_eq!(
            config.interfaces,
            Some(vec!["eth0".to_owned(), "wlan0".to_owned()])
        );
        assert_eq!(
            (config.mdns, config.history, config.bell),
            (Some(false), Some(false), Some(false))
        );
        assert!(!config.bell());
        assert_eq!(config.require_encryption, Some(true));
        assert_eq!(
            config.theme(),
            Theme {
                own: Color::LightBlue,
                peer: Color::Rgb(0xff, 0x88, 0x00),
                system: Color::Indexed(244),
                accent: Color::LightMagenta,
                online: Color::Green,
                offline: Color::Gray,
                delivered: Color::Indexed(12),
                waiting: Color::Yellow,
                error: Color::LightRed,
                unread: Color::Rgb(0, 0xff, 0),
                notice: Color::White,
                selection: Color::Reset,
            }
        );
    }

    #[test]
    fn colours_not_given_keep_their_defaults() {
        let config = parse_str("[colors]\nown = \"red\"\n").unwrap();
        let theme = config.theme();
        assert_eq!(theme.own, Color::Red);
        assert_eq!(
            Theme {
                own: Theme::default().own,
                ..theme
            },
            Theme::default()
        );
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let e = error("name = \"laptop\"\nport = = 3\n");
        assert!(e.starts_with("config.toml:2:"), "{e}");
        assert!(!e.contains('\n'), "{e:?}");
    }

    #[test]
    fn a_wrong_type_names_the_value() {
        assert_eq!(
            error("name = \"laptop\"\n\nport = \"seven\"\n"),
            "config.toml:3:8: invalid type: string \"seven\", expected u16"
        );
        let e = error("port = 70000\n");
        assert!(e.starts_with("config.toml:1:8: "), "{e}");
        let e = error("interfaces = \"eth0\"\n");
        assert!(e.starts_with("config.toml:1:14: invalid type"), "{e}");
    }

    #[test]
    fn a_name_is_checked_as_name_takes_it() {
        let long = format!("port = 1\nname = \"{}\"\n", "x".repeat(64));
        assert_eq!(
            error(&long),
            "config.toml:2:1: name: a name is at most 63 bytes, without control characters"
        );
        assert!(error("name = \"a\\u001bb\"\n").contains("without control characters"));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let e = error("name = \"laptop\"\nnmae = \"x\"\n");
        assert!(
            e.starts_with("config.toml:2:1: unknown field `nmae`, expected one of"),
            "{e}"
        );
        let e = error("[colours]\n  onw = \"red\"\n");
        assert!(
            e.starts_with("config.toml:2:3: unknown field `onw`, expected one of `own`"),
            "{e}"
        );
        let e = error("[theme]\nown = \"red\"\n");
        assert!(
            e.starts_with("config.toml:1:2: unknown field `theme`"),
            "{e}"
        );
    }

    #[test]
    fn bad_colours_say_what_is_accepted() {
        let e = error("[colours]\nown = \"grene\"\n");
        assert!(
            e.starts_with("config.toml:2:7: unknown colour \"grene\""),
            "{e}"
        );
        assert!(e.contains("#rrggbb"), "{e}");
        let e = error("[colours]\nown = 256\n");
        assert_eq!(
            e,
            "config.toml:2:7: colour index 256 is not between 0 and 255"
        );
        for bad in ["\"#12345\"", "\"#gg0000\"", "\"-1\"", "true", "[1, 2]"] {
            let e = error(&format!("[colours]\npeer = {bad}\n"));
            assert!(e.starts_with("config.toml:2:8: "), "{bad}: {e}");
        }
    }

    #[test]
    fn columns_count_characters() {
        // "é" is two bytes; the column is in characters.
        let e = error("name = \"é\" port = 1\n");
        assert!(e.starts_with("config.toml:1:"), "{e}");
        assert_eq!(line_column("é\nab", 4), (2, 2));
        assert_eq!(line_column("éa", 2), (1, 2));
        assert_eq!(line_column("éa", 1), (1, 1));
        assert_eq!(line_column("", 5), (1, 1));
    }

    #[test]
    fn flags_win_over_the_file() {
        use clap::Parser;
        let config = parse_str(
            "name = \"file\"\nport = 1\ninterfaces = [\"eth1\"]\nmdns = false\nhistory = false\n",
        )
        .unwrap();

        let mut bare = crate::cli::Cli::parse_from(["lantalk"]).global;
        config.fill(&mut bare);
        assert_eq!(bare.name.as_deref(), Some("file"));
        assert_eq!(bare.port, Some(1));
        assert_eq!(bare.interfaces, ["eth1"]);
        assert!(bare.no_mdns && bare.no_history);

        let mut flags = crate::cli::Cli::parse_from([
            "lantalk",
            "--name",
            "flag",
            "--port",
            "2",
            "--interface",
            "eth2",
        ])
        .global;
        config.fill(&mut flags);
        assert_eq!(flags.name.as_deref(), Some("flag"));
        assert_eq!(flags.port, Some(2));
        assert_eq!(flags.interfaces, ["eth2"]);

        let mut on = crate::cli::Cli::parse_from(["lantalk"]).global;
        parse_str("mdns = true\nhistory = true\n")
            .unwrap()
            .fill(&mut on);
        assert!(!on.no_mdns && !on.no_history);
    }

    #[test]
    fn web_false_turns_the_web_client_off() {
        use clap::Parser;
        let mut global = crate::cli::Cli::parse_from(["lantalk"]).global;
        parse_str("web = true\n").unwrap().fill(&mut global);
        assert!(!global.no_web);
        parse_str("web = false\n").unwrap().fill(&mut global);
        assert!(global.no_web);
        let flag = crate::cli::Cli::parse_from(["lantalk", "--no-web"]).global;
        assert!(flag.no_web);
    }

    #[test]
    fn a_missing_file_is_an_error_only_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let e = load(Some(&missing)).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("nope.toml"), "{e}");

        let given = dir.path().join("given.toml");
        std::fs::write(&given, "port = 9\n").unwrap();
        assert_eq!(load(Some(&given)).unwrap().port, Some(9));
    }
}
