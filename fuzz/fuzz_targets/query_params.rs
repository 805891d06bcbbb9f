//! Fuzzes the REST query-string parser with every route's accepted parameters: it must never
//! panic, and every error it reports must name a parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partners::gateway::errors::Source;
use partners::gateway::params::{Accepts, Params};

const LIST: Accepts = Accepts {
    scalars: &["business_uuid", "include", "search", "page", "per_page", "sort"],
    array_filters: &["categories", "excluded_categories", "wholesaler_categories", "country_codes", "status"],
    bool_filters: &["preferred", "active"],
};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    match Params::from_query(query, &LIST) {
        Ok(params) => {
            let mut errors = Vec::new();
            let _ = params.int("page", &mut errors);
            let _ = params.int("per_page", &mut errors);
            let _ = params.boolean("filter[preferred]", &mut errors);
            let _ = params.list("filter[categories]");
            let _ = params.comma_list("include");
            let _ = params.link_pairs();
            assert!(errors.iter().all(|e| matches!(e.source, Source::Parameter(_))));
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
