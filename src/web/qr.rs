//! The QR code of the chat page's address, as text a terminal shows: two
//! modules per character cell, one above the other (`▀`, `▄`, `█`, space),
//! so that modules come out square. The light modules and the quiet zone
//! are the drawn blocks: on a terminal with a dark background (or the chat
//! screen, which draws the code white on black) the code reads as a
//! printed one, dark on light.
//!
//! Error correction level M (15%): every address lantalk makes
//! (`http://255.255.255.255:65535/#t=` + 32 hex digits, 64 bytes) fits
//! version 4, 33 modules, so the code with a 2-module quiet zone is 37
//! columns by 19 rows, and fits an 80×24 terminal with the addresses
//! above it.

use qrcode::{Color, EcLevel, QrCode};

/// The quiet zone the chat screen draws (rows are scarce there); phone
/// cameras read it well against the dark around it.
pub const QUIET_ZONE_SCREEN: usize = 2;

/// The quiet zone printed on stderr: the standard's four modules.
pub const QUIET_ZONE_PRINTED: usize = 4;

/// The QR code of `text` as rows of half-block characters, with a light
/// quiet zone `quiet` modules wide all around. Every row has the same
/// number of characters. Fails only for a text too long for any QR code.
pub fn half_blocks(text: &str, quiet: usize) -> Result<Vec<String>, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    let width = code.width();
    let size = width + 2 * quiet;
    // Light: the quiet zone and the code's light modules. Below the last
    // row (an odd size) is the terminal's dark background.
    let light = |x: usize, y: usize| -> bool {
        if y >= size {
            return false;
        }
        let (Some(cx), Some(cy)) = (x.checked_sub(quiet), y.checked_sub(quiet)) else {
            return true;
        };
        cx >= width || cy >= width || code[(cx, cy)] == Color::Light
    };
    Ok((0..size)
        .step_by(2)
        .map(|y| {
            (0..size)
                .map(|x| match (light(x, y), light(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                })
                .collect()
        })
        .collect())
}

/// Reads the QR codes in text drawn with half blocks (a screen, printed
/// lines), as a phone's camera would see it: `█▀▄` light, anything else
/// dark. Each character becomes `scale` × 2·`scale` pixels.
#[cfg(test)]
pub(crate) fn decode(lines: &[String]) -> Vec<String> {
    const SCALE: usize = 4;
    let cols = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    // A dark margin all around, like the terminal's background.
    let margin = 4 * SCALE;
    let w = cols * SCALE + 2 * margin;
    let h = lines.len() * 2 * SCALE + 2 * margin;
    let cells: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let (Some(x), Some(y)) = (x.checked_sub(margin), y.checked_sub(margin)) else {
            return 0;
        };
        let (col, row, lower) = (x / SCALE, y / (2 * SCALE), (y / SCALE) % 2 == 1);
        let c = cells
            .get(row)
            .and_then(|r| r.get(col))
            .copied()
            .unwrap_or(' ');
        let lit = match c {
            '█' => true,
            '▀' => !lower,
            '▄' => lower,
            _ => false,
        };
        if lit { 255 } else { 0 }
    });
    image
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest address lantalk makes.
    const LONGEST: &str = "http://255.255.255.255:65535/#t=0123456789abcdef0123456789abcdef";

    #[test]
    fn the_code_reads_back_as_the_address() {
        for quiet in [QUIET_ZONE_SCREEN, QUIET_ZONE_PRINTED] {
            for url in [
                LONGEST,
                "http://10.0.0.5:7342/#t=0123456789abcdef0123456789abcdef",
            ] {
                let rows = half_blocks(url, quiet).unwrap();
                assert_eq!(
                    decode(&rows),
                    [url],
                    "quiet zone {quiet}:\n{}",
                    rows.join("\n")
                );
            }
        }
    }

    #[test]
    fn the_longest_address_fits_80x24_with_room_for_the_text() {
        let rows = half_blocks(LONGEST, QUIET_ZONE_SCREEN).unwrap();
        assert_eq!(rows.len(), 19);
        assert!(rows.iter().all(|r| r.chars().count() == 37), "{rows:?}");
        let printed = half_blocks(LONGEST, QUIET_ZONE_PRINTED).unwrap();
        assert_eq!((printed.len(), printed[0].chars().count()), (21, 41));
    }

    #[test]
    fn the_quiet_zone_is_light_all_around() {
        let rows = half_blocks(LONGEST, QUIET_ZONE_SCREEN).unwrap();
        // Two modules: the first row whole, two columns each side.
        assert!(rows[0].chars().all(|c| c == '█'), "{}", rows[0]);
        for row in &rows[..rows.len() - 1] {
            assert!(row.starts_with("██") && row.ends_with("██"), "{row}");
        }
        // 37 modules: the last row's lower half is the dark below the code.
        assert!(rows[18].chars().all(|c| c == '▀'), "{}", rows[18]);
    }
}
