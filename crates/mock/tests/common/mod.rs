//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

/// Decodes a PNG fully: (width, height, RGB bytes).
pub fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("PNG pixel data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// How many different colours an RGB buffer holds.
pub fn distinct_colours(pixels: &[u8]) -> usize {
    let mut colours: Vec<&[u8]> = pixels.chunks_exact(3).collect();
    colours.sort_unstable();
    colours.dedup();
    colours.len()
}

/// The share of pixels (0..=1) that differ between two equally sized RGB buffers.
pub fn differing_share(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let pixels = a.len() / 3;
    let differ = a
        .chunks_exact(3)
        .zip(b.chunks_exact(3))
        .filter(|(x, y)| x != y)
        .count();
    differ as f64 / pixels as f64
}

/// A fixed instant for simulated clocks.
pub fn t0() -> jiff::Timestamp {
    "2026-03-08T09:00:00Z".parse().expect("a timestamp")
}
