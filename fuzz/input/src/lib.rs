//! The fuzz targets' structured inputs.
//!
//! Each type is decoded from libFuzzer's bytes with [`arbitrary`] in a simple, documented layout
//! and has an `encode` that is its exact inverse, so `seed` (src/bin/seed.rs) can turn the
//! repository's fixtures into a seed corpus the fuzzer starts from. Lengths are single bytes and
//! counts are taken modulo small bounds, so every byte string decodes to something (short input
//! means defaults, never a rejected case).

use arbitrary::{Arbitrary, Result, Unstructured};

/// The key the fuzz targets hold (registered as an `ApiKey`, configured in a gateway, written in
/// a configuration file) and splice into their input: it must never come out of a parser.
/// It has none of the known key prefixes, so only the process's own registration can catch it.
pub const KEY: &str = "fuzzheldkey-7QzXw2vN9pL4tR8m";

/// The most headers an input carries.
const MAX_HEADERS: u8 = 8;

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u.bytes(1).map_or(0, |b| b[0])
}

fn u16_be(u: &mut Unstructured<'_>) -> u16 {
    let hi = byte(u);
    let lo = byte(u);
    u16::from_be_bytes([hi, lo])
}

fn rest(u: &mut Unstructured<'_>) -> Vec<u8> {
    let len = u.len();
    u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
}

fn short(u: &mut Unstructured<'_>) -> Vec<u8> {
    let len = usize::from(byte(u)).min(u.len());
    u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
}

fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&bytes[..len]);
}

fn headers(u: &mut Unstructured<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let count = byte(u) % (MAX_HEADERS + 1);
    (0..count).map(|_| (short(u), short(u))).collect()
}

fn put_headers(out: &mut Vec<u8>, headers: &[(Vec<u8>, Vec<u8>)]) {
    let count = headers.len().min(usize::from(MAX_HEADERS));
    out.push(count as u8);
    for (name, value) in &headers[..count] {
        put_short(out, name);
        put_short(out, value);
    }
}

/// Where the held key is put: a mode byte (what each target makes of it) and a position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyPlace {
    /// What to do with the key; each input type documents its modes.
    pub mode: u8,
    /// Where, taken modulo the length of what it goes into.
    pub at: u16,
}

impl KeyPlace {
    fn decode(u: &mut Unstructured<'_>) -> KeyPlace {
        KeyPlace {
            mode: byte(u),
            at: u16_be(u),
        }
    }

    fn encode(self, out: &mut Vec<u8>) {
        out.push(self.mode);
        out.extend_from_slice(&self.at.to_be_bytes());
    }
}

/// `bytes` with `insert` spliced in at `at` (modulo the length).
pub fn splice(bytes: &[u8], at: u16, insert: &[u8]) -> Vec<u8> {
    let at = usize::from(at) % (bytes.len() + 1);
    let mut out = Vec::with_capacity(bytes.len() + insert.len());
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(insert);
    out.extend_from_slice(&bytes[at..]);
    out
}

/// An upstream's answer: any status, any headers, any body.
///
/// Layout: `status:u16be, count:u8, count x (len:u8 name, len:u8 value), key mode:u8,
/// key at:u16be, body (the rest)`. Key modes (low two bits): 0 none, 1 in the body, 2 in a
/// header's value, 3 both (the upstream echoes the key back).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The raw status; targets map it into 100..=999.
    pub status: u16,
    /// Header names and values, as bytes (invalid ones are dropped by the target).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where the held key is echoed.
    pub key: KeyPlace,
    /// The body.
    pub body: Vec<u8>,
}

impl Exchange {
    /// The status as an HTTP status code number in 100..=999.
    pub fn status_code(&self) -> u16 {
        100 + self.status % 900
    }

    /// The body, with the key spliced in when the mode says so.
    pub fn body_with_key(&self) -> Vec<u8> {
        if self.key.mode & 1 == 1 {
            splice(&self.body, self.key.at, KEY.as_bytes())
        } else {
            self.body.clone()
        }
    }

    /// The headers, with the key spliced into one value when the mode says so.
    pub fn headers_with_key(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut headers = self.headers.clone();
        if self.key.mode & 2 == 2 {
            if headers.is_empty() {
                headers.push((b"www-authenticate".to_vec(), Vec::new()));
            }
            let i = usize::from(self.key.at) % headers.len();
            headers[i].1 = splice(&headers[i].1, self.key.at, KEY.as_bytes());
        }
        headers
    }

    /// The bytes that decode to this exchange.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.status.to_be_bytes().to_vec();
        put_headers(&mut out, &self.headers);
        self.key.encode(&mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

impl<'a> Arbitrary<'a> for Exchange {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let status = u16_be(u);
        let headers = headers(u);
        let key = KeyPlace::decode(u);
        let body = rest(u);
        Ok(Exchange {
            status,
            headers,
            key,
            body,
        })
    }
}

/// The gateway endpoints whose request parsers are fuzzed (the first byte, modulo 5).
pub const ENDPOINTS: [&str; 5] = [
    "openai-images-generations",
    "openai-images-edits",
    "gemini-generate-content",
    "gemini-predict",
    "chat-completions",
];

/// A client's request to the gateway.
///
/// Layout: `endpoint:u8, count:u8, count x (len:u8 name, len:u8 value), len:u8 query,
/// key mode:u8, key at:u16be, body (the rest)`. Key modes: low two bits say where the client
/// puts the key (0 nowhere, 1 `Authorization: Bearer`, 2 `x-goog-api-key`, 3 `?key=`);
/// bit 2 set: the gateway has a client with this key; bit 3 set: the gateway has no clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayRequest {
    /// Index into [`ENDPOINTS`] (modulo its length).
    pub endpoint: u8,
    /// Header names and values, as bytes.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The query string, without `?`.
    pub query: Vec<u8>,
    /// Where the client's key goes.
    pub key: KeyPlace,
    /// The body.
    pub body: Vec<u8>,
}

impl GatewayRequest {
    /// The endpoint's name.
    pub fn endpoint_name(&self) -> &'static str {
        ENDPOINTS[usize::from(self.endpoint) % ENDPOINTS.len()]
    }

    /// The bytes that decode to this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.endpoint];
        put_headers(&mut out, &self.headers);
        put_short(&mut out, &self.query);
        self.key.encode(&mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

impl<'a> Arbitrary<'a> for GatewayRequest {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let endpoint = byte(u);
        let headers = headers(u);
        let query = short(u);
        let key = KeyPlace::decode(u);
        let body = rest(u);
        Ok(GatewayRequest {
            endpoint,
            headers,
            query,
            key,
            body,
        })
    }
}

/// A text file (configuration, scenario, batch input, journal) and where a secret line goes.
///
/// Layout: `key mode:u8, key at:u16be, text (the rest)`. The target decides what the mode
/// means (the configuration target inserts an `api_key = "..."` line before line `at` when bit
/// 0 is set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextFile {
    /// Where the key goes.
    pub key: KeyPlace,
    /// The file's bytes.
    pub text: Vec<u8>,
}

impl TextFile {
    /// The bytes that decode to this file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.key.encode(&mut out);
        out.extend_from_slice(&self.text);
        out
    }

    /// The text with `line` inserted before line `at` (modulo the number of lines + 1).
    pub fn with_line(&self, line: &str) -> Vec<u8> {
        let lines: Vec<&[u8]> = self.text.split(|b| *b == b'\n').collect();
        let at = usize::from(self.key.at) % (lines.len() + 1);
        let mut out = Vec::with_capacity(self.text.len() + line.len() + 1);
        for (i, l) in lines.iter().enumerate() {
            if i == at {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(l);
            if i + 1 < lines.len() {
                out.push(b'\n');
            }
        }
        if at == lines.len() {
            out.push(b'\n');
            out.extend_from_slice(line.as_bytes());
        }
        out
    }
}

impl<'a> Arbitrary<'a> for TextFile {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let key = KeyPlace::decode(u);
        let text = rest(u);
        Ok(TextFile { key, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: for<'a> Arbitrary<'a>>(bytes: &[u8]) -> T {
        T::arbitrary_take_rest(Unstructured::new(bytes)).unwrap()
    }

    #[test]
    fn encode_is_the_inverse_of_decode() {
        let exchange = Exchange {
            status: 429,
            headers: vec![(b"retry-after".to_vec(), b"7".to_vec())],
            key: KeyPlace { mode: 3, at: 12 },
            body: b"{\"error\":{}}".to_vec(),
        };
        assert_eq!(decode::<Exchange>(&exchange.encode()), exchange);
        let request = GatewayRequest {
            endpoint: 1,
            headers: vec![(
                b"content-type".to_vec(),
                b"multipart/form-data; boundary=X".to_vec(),
            )],
            query: b"alt=sse".to_vec(),
            key: KeyPlace { mode: 5, at: 0 },
            body: b"--X--".to_vec(),
        };
        assert_eq!(decode::<GatewayRequest>(&request.encode()), request);
        let file = TextFile {
            key: KeyPlace { mode: 1, at: 2 },
            text: b"a = 1\n[b]\n".to_vec(),
        };
        assert_eq!(decode::<TextFile>(&file.encode()), file);
        assert_eq!(file.with_line("k = 2"), b"a = 1\n[b]\nk = 2\n".to_vec());
    }

    #[test]
    fn any_bytes_decode() {
        for bytes in [&b""[..], b"\x01", b"\xff\xff\xff\xff\xff"] {
            let _: Exchange = decode(bytes);
            let _: GatewayRequest = decode(bytes);
            let _: TextFile = decode(bytes);
        }
    }
}
