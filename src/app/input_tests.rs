use super::*;

/// An input holding `text` with the cursor at byte `cursor`.
fn at(text: &str, cursor: usize) -> Input {
    assert!(text.is_char_boundary(cursor));
    Input {
        text: text.to_owned(),
        cursor,
    }
}

/// An input holding `text` with the cursor at the end.
fn at_end(text: &str) -> Input {
    at(text, text.len())
}

fn rows(layout: &InputLayout) -> Vec<&str> {
    layout.rows.iter().map(String::as_str).collect()
}

#[test]
fn set_and_take() {
    let mut input = Input::default();
    assert!(input.is_empty());
    input.set("héllo".to_owned());
    assert_eq!((input.text(), input.cursor()), ("héllo", 6));
    assert_eq!(input.take(), "héllo");
    assert!(input.is_empty());
    assert_eq!(input.cursor(), 0);
}

#[test]
fn insert_char_multibyte() {
    let mut input = Input::default();
    for c in ['é', '你', '👋', '\n', 'a'] {
        input.insert_char(c);
    }
    assert_eq!(input.text(), "é你👋\na");
    assert_eq!(input.cursor(), 2 + 3 + 4 + 1 + 1);
    let mut input = at("a你b", 1);
    input.insert_char('é');
    assert_eq!((input.text(), input.cursor()), ("aé你b", 3));
}

#[test]
fn insert_str_in_middle() {
    let mut input = at("你b", 3);
    input.insert_str("é👋");
    assert_eq!((input.text(), input.cursor()), ("你é👋b", 9));
}

#[test]
fn insert_str_normalises_crlf_and_cr() {
    let mut input = Input::default();
    input.insert_str("a\r\nb\rc\td\n");
    assert_eq!(input.text(), "a\nb\nc\td\n");
    assert_eq!(input.cursor(), input.text().len());
}

#[test]
fn backspace_multibyte() {
    let mut input = at_end("é你👋");
    input.backspace();
    assert_eq!((input.text(), input.cursor()), ("é你", 5));
    input.backspace();
    input.backspace();
    assert_eq!((input.text(), input.cursor()), ("", 0));
    input.backspace();
    assert_eq!((input.text(), input.cursor()), ("", 0));
}

#[test]
fn backspace_joins_lines() {
    let mut input = at("ab\ncd", 3);
    input.backspace();
    assert_eq!((input.text(), input.cursor()), ("abcd", 2));
}

#[test]
fn delete_multibyte() {
    let mut input = at("a你👋", 1);
    input.delete();
    assert_eq!((input.text(), input.cursor()), ("a👋", 1));
    input.delete();
    assert_eq!((input.text(), input.cursor()), ("a", 1));
    input.delete();
    assert_eq!((input.text(), input.cursor()), ("a", 1));
}

#[test]
fn left_right_by_char() {
    let mut input = at_end("é你\n👋");
    let mut seen = vec![input.cursor()];
    for _ in 0..5 {
        input.left();
        seen.push(input.cursor());
    }
    assert_eq!(seen, [10, 6, 5, 2, 0, 0]);
    let mut seen = vec![];
    for _ in 0..5 {
        input.right();
        seen.push(input.cursor());
    }
    assert_eq!(seen, [2, 5, 6, 10, 10]);
}

#[test]
fn left_right_skip_combining_marks() {
    let text = "xe\u{301}y";
    let mut input = at(text, 1);
    input.right();
    assert_eq!(input.cursor(), 4);
    input.left();
    assert_eq!(input.cursor(), 1);
}

#[test]
fn home_end_on_middle_line() {
    let text = "one\ntwo 你\nthree";
    let mut input = at(text, 6);
    input.home();
    assert_eq!(input.cursor(), 4);
    input.home();
    assert_eq!(input.cursor(), 4);
    input.end();
    assert_eq!(input.cursor(), 11);
    assert_eq!(&text[input.cursor()..], "\nthree");
    input.end();
    assert_eq!(input.cursor(), 11);
}

#[test]
fn word_left_readline() {
    let text = "foo_bar, 你好 baz";
    let mut input = at_end(text);
    input.word_left();
    assert_eq!(&text[input.cursor()..], "baz");
    input.word_left();
    assert_eq!(&text[input.cursor()..], "你好 baz");
    input.word_left();
    assert_eq!(input.cursor(), 0);
    input.word_left();
    assert_eq!(input.cursor(), 0);
}

#[test]
fn word_right_readline() {
    let text = "  foo_bar, 你好\nbaz";
    let mut input = at(text, 0);
    input.word_right();
    assert_eq!(&text[..input.cursor()], "  foo_bar");
    input.word_right();
    assert_eq!(&text[..input.cursor()], "  foo_bar, 你好");
    input.word_right();
    assert_eq!(input.cursor(), text.len());
    input.word_right();
    assert_eq!(input.cursor(), text.len());
}

#[test]
fn kill_word_back_unix_word_rubout() {
    let mut input = at_end("héllo foo-bar.baz  ");
    input.kill_word_back();
    assert_eq!(input.text(), "héllo ");
    assert_eq!(input.cursor(), input.text().len());
    input.kill_word_back();
    assert_eq!((input.text(), input.cursor()), ("", 0));
    input.kill_word_back();
    assert_eq!((input.text(), input.cursor()), ("", 0));
}

#[test]
fn kill_word_back_mid_text_and_newline() {
    let mut input = at("ab 你好👋 cd", 13);
    input.kill_word_back();
    assert_eq!((input.text(), input.cursor()), ("ab  cd", 3));
    let mut input = at_end("x\nab\n");
    input.kill_word_back();
    assert_eq!(input.text(), "x\n");
}

#[test]
fn kill_to_line_start_ctrl_u() {
    let mut input = at("one\ntwo 你\nthree", 8);
    input.kill_to_line_start();
    assert_eq!((input.text(), input.cursor()), ("one\n你\nthree", 4));
    input.kill_to_line_start();
    assert_eq!((input.text(), input.cursor()), ("one你\nthree", 3));
    let mut input = at("abc", 0);
    input.kill_to_line_start();
    assert_eq!((input.text(), input.cursor()), ("abc", 0));
}

#[test]
fn kill_to_line_end_ctrl_k() {
    let mut input = at("one\ntwo 你\nthree", 7);
    input.kill_to_line_end();
    assert_eq!((input.text(), input.cursor()), ("one\ntwo\nthree", 7));
    input.kill_to_line_end();
    assert_eq!((input.text(), input.cursor()), ("one\ntwothree", 7));
    input.kill_to_line_end();
    assert_eq!((input.text(), input.cursor()), ("one\ntwo", 7));
    input.kill_to_line_end();
    assert_eq!((input.text(), input.cursor()), ("one\ntwo", 7));
}

#[test]
fn move_up_down_keep_column() {
    // Column 3 (in chars) on the middle line.
    let text = "你好世界\nab👋d\nwxyz";
    let mut input = at(text, 13 + 2 + 4);
    assert!(input.move_up());
    assert_eq!(&text[..input.cursor()], "你好世");
    assert!(input.move_down());
    assert_eq!(&text[input.cursor()..], "d\nwxyz");
    assert!(input.move_down());
    assert_eq!(&text[input.cursor()..], "z");
    assert!(!input.move_down());
    assert_eq!(&text[input.cursor()..], "z");
}

#[test]
fn move_up_down_clamp_to_short_line() {
    let text = "ab\n\nabcdef";
    let mut input = at_end(text);
    assert!(input.move_up());
    assert_eq!(input.cursor(), 3);
    // The column is the current one, not remembered across short lines.
    assert!(input.move_up());
    assert_eq!(input.cursor(), 0);
    assert!(!input.move_up());
    assert_eq!(input.cursor(), 0);
    let mut input = at(text, 2);
    assert!(input.move_down());
    assert_eq!(input.cursor(), 3);
    assert!(input.move_down());
    assert_eq!(input.cursor(), 4);
}

#[test]
fn move_up_down_single_line_return_false() {
    let mut input = at("hello", 2);
    assert!(!input.move_up());
    assert!(!input.move_down());
    assert_eq!(input.cursor(), 2);
}

#[test]
fn first_and_last_line() {
    let text = "a\nb\nc";
    let first = at(text, 1);
    assert!(first.is_on_first_line() && !first.is_on_last_line());
    let middle = at(text, 2);
    assert!(!middle.is_on_first_line() && !middle.is_on_last_line());
    let last = at(text, 4);
    assert!(!last.is_on_first_line() && last.is_on_last_line());
    let empty = Input::default();
    assert!(empty.is_on_first_line() && empty.is_on_last_line());
}

#[test]
fn layout_empty() {
    let layout = Input::default().layout(10);
    assert_eq!(rows(&layout), [""]);
    assert_eq!(layout.cursor, (0, 0));
}

#[test]
fn layout_ascii_wraps_at_exact_width() {
    let layout = at("abcdefg", 4).layout(3);
    assert_eq!(rows(&layout), ["abc", "def", "g"]);
    assert_eq!(layout.cursor, (1, 1));
    let layout = at_end("abcdef").layout(3);
    assert_eq!(rows(&layout), ["abc", "def", ""]);
    assert_eq!(layout.cursor, (2, 0));
    let layout = at("abcdef", 2).layout(3);
    assert_eq!(rows(&layout), ["abc", "def"]);
    assert_eq!(layout.cursor, (0, 2));
}

#[test]
fn layout_cursor_at_wrap_boundary() {
    let layout = at("abcdef", 3).layout(3);
    assert_eq!(rows(&layout), ["abc", "def"]);
    assert_eq!(layout.cursor, (1, 0));
    // A full line followed by another: the cursor gets its own row.
    let layout = at("abc\nx", 3).layout(3);
    assert_eq!(rows(&layout), ["abc", "", "x"]);
    assert_eq!(layout.cursor, (1, 0));
    let layout = at_end("abc\nx").layout(3);
    assert_eq!(rows(&layout), ["abc", "x"]);
    assert_eq!(layout.cursor, (1, 1));
}

#[test]
fn layout_cjk_wide_char_moves_to_next_row() {
    // 你 好 take cells 0-3; 世 needs cells 4-5 but the row has only 5.
    let layout = at_end("你好世界").layout(5);
    assert_eq!(rows(&layout), ["你好", "世界"]);
    assert_eq!(layout.cursor, (1, 4));
    let layout = at("你好世界", 6).layout(5);
    assert_eq!(layout.cursor, (1, 0));
    let layout = at("你好世界", 3).layout(5);
    assert_eq!(layout.cursor, (0, 2));
    let layout = at_end("a👋👋").layout(4);
    assert_eq!(rows(&layout), ["a👋", "👋"]);
    assert_eq!(layout.cursor, (1, 2));
}

#[test]
fn layout_cursor_after_newline() {
    let layout = at_end("ab\n").layout(10);
    assert_eq!(rows(&layout), ["ab", ""]);
    assert_eq!(layout.cursor, (1, 0));
    let layout = at("ab\n\ncd", 4).layout(10);
    assert_eq!(rows(&layout), ["ab", "", "cd"]);
    assert_eq!(layout.cursor, (2, 0));
}

#[test]
fn layout_zero_width_stays_attached() {
    let layout = at_end("abe\u{301}x").layout(3);
    assert_eq!(rows(&layout), ["abe\u{301}", "x"]);
    assert_eq!(layout.cursor, (1, 1));
}

#[test]
fn layout_width_zero_and_too_wide_chars() {
    let layout = at_end("a你").layout(0);
    assert_eq!(rows(&layout), ["a", "你", ""]);
    assert_eq!(layout.cursor, (2, 0));
}

#[test]
fn layout_control_chars_as_caret_escapes() {
    let layout = at_end("a\x1bb\tc").layout(20);
    assert_eq!(rows(&layout), ["a^[b c"]);
    assert_eq!(layout.cursor, (0, 6));
    // The escape is one unit: it is never split across rows.
    let layout = at("ab\x07c", 2).layout(3);
    assert_eq!(rows(&layout), ["ab", "^Gc"]);
    assert_eq!(layout.cursor, (1, 0));
    let layout = at("ab\x07c", 3).layout(3);
    assert_eq!(layout.cursor, (1, 2));
}

/// Emoji sequences are laid out as the chat screen draws them: without the
/// skin tones, joiners and variation selectors terminals disagree about,
/// so the cursor sits right after what is shown.
#[test]
fn emoji_sequences_are_laid_out_plainly() {
    let input = at_end("a👍🏽❤\u{fe0f}👨\u{200d}👩");
    let layout = input.layout(20);
    assert_eq!(rows(&layout), ["a👍❤👨👩"]);
    assert_eq!(layout.cursor, (0, 1 + 2 + 1 + 2 + 2));
    // A row of toned thumbs wraps by what is shown: 2 cells each.
    let layout = at_end(&"👍🏽".repeat(5)).layout(6);
    assert_eq!(rows(&layout), ["👍👍👍", "👍👍"]);
    // The cursor steps over a sequence's hidden parts in one move.
    let mut input = at_end("👍🏽");
    input.left();
    assert_eq!(input.cursor(), 0);
}
