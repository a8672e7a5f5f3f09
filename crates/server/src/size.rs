//! OpenAI's `size` (`WxH` or `auto`) as the router's aspect ratio and image size.

use imagegate_core::{AspectRatio, ImageSize};

/// The aspect ratios the Gemini image models accept: a `WxH` maps to the nearest.
const RATIOS: [(u16, u16); 10] = [
    (1, 1),
    (2, 3),
    (3, 2),
    (3, 4),
    (4, 3),
    (4, 5),
    (5, 4),
    (9, 16),
    (16, 9),
    (21, 9),
];

/// The longest side a `size` may ask for.
const MAX_SIDE: u32 = 4096;

/// `auto` -> nothing; `WxH` -> the nearest supported ratio and the size class of the longer
/// side; anything else is `Err` with the reason.
pub(crate) fn parse(size: &str) -> Result<Option<(AspectRatio, ImageSize)>, String> {
    let size = size.trim();
    if size.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "unknown size `{size}`: expected `auto` or WIDTHxHEIGHT such as 1024x1024 (each side 1 to {MAX_SIDE})"
        )
    };
    let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(bad());
    }
    let want = (f64::from(w) / f64::from(h)).ln();
    let (rw, rh) = RATIOS
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = ((f64::from(a.0) / f64::from(a.1)).ln() - want).abs();
            let db = ((f64::from(b.0) / f64::from(b.1)).ln() - want).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1, 1));
    let ratio = AspectRatio::new(rw, rh).ok_or_else(bad)?;
    let class = match w.max(h) {
        0..=512 => ImageSize::Half,
        513..=1536 => ImageSize::OneK,
        1537..=2048 => ImageSize::TwoK,
        _ => ImageSize::FourK,
    };
    Ok(Some((ratio, class)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_sizes_map_to_ratios_and_classes() {
        let cases = [
            ("1024x1024", "1:1", ImageSize::OneK),
            ("1536x1024", "3:2", ImageSize::OneK),
            ("1024x1536", "2:3", ImageSize::OneK),
            ("1792x1024", "16:9", ImageSize::TwoK),
            ("256x256", "1:1", ImageSize::Half),
            ("4096x4096", "1:1", ImageSize::FourK),
        ];
        for (size, ratio, class) in cases {
            let (r, c) = parse(size).unwrap().unwrap();
            assert_eq!((r.to_string().as_str(), c), (ratio, class), "{size}");
        }
        assert_eq!(parse("auto"), Ok(None));
        for bad in ["", "1024", "0x10", "10x", "9000x10", "axb", "-1x5"] {
            assert!(parse(bad).unwrap_err().contains("unknown size"), "{bad}");
        }
    }
}
