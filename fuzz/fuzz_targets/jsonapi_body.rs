//! Fuzzes JSON:API body decoding (click events, partner attributes, GET bodies): arbitrary bytes
//! that parse as JSON must never panic a decoder, and rejections are 400s pointing into the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partners::gateway::errors::Source;
use partners::gateway::params::{Accepts, Params};

const LIST: Accepts = Accepts {
    scalars: &["business_uuid", "include", "search", "page", "per_page", "sort"],
    array_filters: &["categories", "country_codes"],
    bool_filters: &["preferred", "active"],
};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Err(errors) = partners::gateway::click_event_type(&Some(body.clone()), 42) {
        assert!(errors.errors.iter().all(|e| e.status.as_u16() == 400));
        assert!(errors.errors.iter().all(|e| matches!(e.source, Source::Pointer(_))));
    }
    if let Some(data) = body.get("data").and_then(|d| d.as_object()) {
        let _ = partners::gateway::partner_from_attributes(data);
    }
    let _ = Params::from_body(&body, &LIST);
});
