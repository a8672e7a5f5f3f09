//! Nothing a client sends can panic the request parsers: arbitrary bytes, and JSON shaped like
//! each dialect's body with arbitrary values, go through every parser.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{chat, deadline, gemini, openai, query, size};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("1024x1024")),
        Just(json!("16:9")),
        Just(json!("data:image/png;base64,iVBORw0KGgo=")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("prompt".to_owned()),
                        Just("n".to_owned()),
                        Just("size".to_owned()),
                        Just("model".to_owned()),
                        Just("contents".to_owned()),
                        Just("parts".to_owned()),
                        Just("text".to_owned()),
                        Just("inlineData".to_owned()),
                        Just("data".to_owned()),
                        Just("generationConfig".to_owned()),
                        Just("imageConfig".to_owned()),
                        Just("messages".to_owned()),
                        Just("role".to_owned()),
                        Just("content".to_owned()),
                        Just("type".to_owned()),
                        Just("image_url".to_owned()),
                        Just("url".to_owned()),
                        Just("modalities".to_owned()),
                        Just("instances".to_owned()),
                        Just("parameters".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                ),
                0..5,
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn every_parser(body: &[u8]) {
    let _ = openai::parse_generation(body);
    let _ = gemini::parse_generate(body);
    let _ = gemini::parse_predict(body);
    let _ = chat::parse(body);
    let bytes = bytes::Bytes::copy_from_slice(body);
    let _ =
        futures::executor::block_on(openai::parse_edit(bytes, "multipart/form-data; boundary=X"));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Seeded: the same cases every run, so a failure reproduces.
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_127),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        every_parser(&body);
    }

    #[test]
    fn dialect_shaped_json_never_panics(value in any_json()) {
        every_parser(value.to_string().as_bytes());
        let wrapped = json!({"contents": [{"parts": [value.clone()]}], "messages": [{"role": "user", "content": [value.clone()]}], "prompt": "x", "n": value.clone()});
        every_parser(wrapped.to_string().as_bytes());
    }

    #[test]
    fn multipart_shaped_bodies_never_panic(name in "[a-z\\[\\]]{0,8}", data in prop::collection::vec(any::<u8>(), 0..64), cut in 0usize..200) {
        let mut body = format!("--X\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a.png\"\r\n\r\n").into_bytes();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n--X--\r\n");
        body.truncate(cut.min(body.len()));
        let _ = futures::executor::block_on(openai::parse_edit(bytes::Bytes::from(body), "multipart/form-data; boundary=X"));
    }

    #[test]
    fn sizes_queries_and_wait_headers_never_panic(text in ".{0,24}") {
        let _ = size::parse(&text);
        let _ = query::pairs(Some(&text));
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            headers.insert("x-imagegate-max-wait", v.clone());
            headers.insert("x-server-timeout", v);
        }
        let _ = deadline::max_wait(&headers, std::time::Duration::from_secs(30));
    }
}
