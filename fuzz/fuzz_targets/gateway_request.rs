//! The gateway's request parsing for each dialect (OpenAI images JSON and multipart, Gemini
//! generateContent and predict, chat completions), after authentication, with any headers,
//! query and body; the client's key, wherever it is sent, never comes back in the answer.
#![no_main]

use imagegate_fuzz::{GatewayRequest, KEY, assert_no_key, header_map};
use imagegate_server::fuzzing::{Clients, Endpoint, image_size, request};
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: [Endpoint; 5] = [
    Endpoint::OpenAiGenerations,
    Endpoint::OpenAiEdits,
    Endpoint::GeminiGenerateContent,
    Endpoint::GeminiPredict,
    Endpoint::ChatCompletions,
];

fuzz_target!(|input: GatewayRequest| {
    let endpoint = ENDPOINTS[usize::from(input.endpoint) % ENDPOINTS.len()];
    let mut headers = input.headers.clone();
    let mut query = String::from_utf8_lossy(&input.query).into_owned();
    match input.key.mode & 3 {
        1 => headers.push((
            b"authorization".to_vec(),
            format!("Bearer {KEY}").into_bytes(),
        )),
        2 => headers.push((b"x-goog-api-key".to_vec(), KEY.as_bytes().to_vec())),
        3 => {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str("key=");
            query.push_str(KEY);
        }
        _ => {}
    }
    let clients = if input.key.mode & 8 == 8 {
        Clients::Open
    } else if input.key.mode & 4 == 4 {
        Clients::One(KEY)
    } else {
        Clients::One("another-client-key-0123456789")
    };
    let headers = header_map(&headers);
    let outcome = request(endpoint, clients, &headers, Some(&query), &input.body);
    // The key as the client's credential must never come back; the same text written by the
    // client in its own body, headers or query may be quoted back to it (a field name, say).
    let holds_key = |bytes: &[u8]| bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes());
    let elsewhere = holds_key(&input.body)
        || holds_key(&input.query)
        || input
            .headers
            .iter()
            .any(|(n, v)| holds_key(n) || holds_key(v));
    if !elsewhere {
        if let Some(failure) = &outcome.failure {
            assert_no_key("failure", failure);
        }
        assert_no_key("max wait", &outcome.max_wait);
    }
    if outcome.client.is_none() {
        assert!(outcome.failure.is_some(), "refused without a failure");
    }
    let _ = image_size(&String::from_utf8_lossy(&input.query));
});
