//! Query strings: `?key=` for Gemini clients and `?alt=sse` for streams, percent-decoded.

/// The pairs of a raw query string, `+` as space and `%XX` decoded; junk survives as is.
pub(crate) fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of `name`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus_and_survives_junk() {
        let p = pairs(Some("key=a%2Bb+c&alt=sse&%zz=1&bare"));
        assert_eq!(get(&p, "key"), Some("a+b c"));
        assert_eq!(get(&p, "alt"), Some("sse"));
        assert_eq!(get(&p, "%zz"), Some("1"));
        assert_eq!(get(&p, "bare"), Some(""));
        assert!(pairs(None).is_empty());
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%e2%82"), "\u{fffd}");
    }
}
