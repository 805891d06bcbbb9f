//! REST request parameters: the query string in the seed's bracket families
//! (`filter[categories][]=a&filter[categories][]=b`, `filter[categories]=a,b`, `filter[preferred]=true`)
//! and the JSON body some clients send with GET (`{"filter": {...}, "search": ..}`), merged with the
//! query winning. Only shape is checked here (known names, no repeated scalars, integers and
//! booleans that parse); the rules on values live in the gRPC layer.

use std::collections::BTreeMap;

use serde_json::Value;

use super::errors::{ApiError, Source};

/// Where a parameter came from, for error sources and links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The query string.
    Query,
    /// The JSON body, at this pointer.
    Body(String),
}

/// One named parameter and its raw values.
#[derive(Debug, Clone)]
pub struct Param {
    pub values: Vec<String>,
    pub origin: Origin,
}

/// What a route accepts.
#[derive(Debug, Clone, Copy)]
pub struct Accepts {
    /// Scalar parameters (`page`, `search`, …).
    pub scalars: &'static [&'static str],
    /// Array filters (`categories` for `filter[categories]`).
    pub array_filters: &'static [&'static str],
    /// Boolean filters (`preferred` for `filter[preferred]`).
    pub bool_filters: &'static [&'static str],
    /// The values of its `filter[status]` array filter, for the documentation (empty: none).
    pub statuses: &'static [&'static str],
}

/// Parsed parameters keyed by canonical name (`page`, `filter[categories]`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: BTreeMap<String, Param>,
}

fn is_array_filter(name: &str, accepts: &Accepts) -> bool {
    name.strip_prefix("filter[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|f| accepts.array_filters.contains(&f))
}

fn known(name: &str, accepts: &Accepts) -> bool {
    if accepts.scalars.contains(&name) {
        return true;
    }
    match name
        .strip_prefix("filter[")
        .and_then(|rest| rest.strip_suffix(']'))
    {
        Some(f) => accepts.array_filters.contains(&f) || accepts.bool_filters.contains(&f),
        None => false,
    }
}

impl Params {
    /// Parses a query string. Errors name each offending parameter.
    pub fn from_query(query: &str, accepts: &Accepts) -> Result<Params, Vec<ApiError>> {
        let mut params = Params::default();
        let mut errors = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let raw = key.into_owned();
            let name = raw.strip_suffix("[]").unwrap_or(&raw).to_owned();
            if !known(&name, accepts) {
                let what = if name.starts_with("filter[") {
                    "unknown filter"
                } else {
                    "unknown parameter"
                };
                errors.push(ApiError::bad_parameter(&raw, format!("{what} {raw:?}")));
                continue;
            }
            let array = is_array_filter(&name, accepts);
            let entry = params.map.entry(name.clone()).or_insert_with(|| Param {
                values: Vec::new(),
                origin: Origin::Query,
            });
            if !array && !entry.values.is_empty() {
                errors.push(ApiError::bad_parameter(&name, "must not be repeated"));
                continue;
            }
            if array && !raw.ends_with("[]") {
                // `filter[x]=a,b`: the comma form; `filter[x][]=v` keeps `v` whole.
                entry.values.extend(value.split(',').map(str::to_owned));
            } else {
                entry.values.push(value.into_owned());
            }
        }
        errors.dedup_by(|a, b| a.source == b.source);
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(errors)
        }
    }

    /// Parses the JSON body of a GET (`{"filter": {..}, "page": 2, ..}`) into the same shape.
    pub fn from_body(body: &Value, accepts: &Accepts) -> Result<Params, Vec<ApiError>> {
        let mut params = Params::default();
        let mut errors = Vec::new();
        let Some(object) = body.as_object() else {
            return Err(vec![ApiError::bad_pointer(
                "",
                "the body must be a JSON object",
            )]);
        };
        for (key, value) in object {
            if key == "filter" {
                let Some(filters) = value.as_object() else {
                    errors.push(ApiError::bad_pointer("/filter", "must be an object"));
                    continue;
                };
                for (filter, value) in filters {
                    let name = format!("filter[{filter}]");
                    let pointer = format!("/filter/{}", escape_pointer(filter));
                    if !known(&name, accepts) {
                        errors.push(ApiError::bad_pointer(
                            &pointer,
                            format!("unknown filter {filter:?}"),
                        ));
                        continue;
                    }
                    match scalar_strings(value, is_array_filter(&name, accepts)) {
                        Some(values) => {
                            params.map.insert(
                                name,
                                Param {
                                    values,
                                    origin: Origin::Body(pointer),
                                },
                            );
                        }
                        None => errors.push(ApiError::bad_pointer(&pointer, "has the wrong type")),
                    }
                }
                continue;
            }
            let pointer = format!("/{}", escape_pointer(key));
            if !accepts.scalars.contains(&key.as_str()) {
                errors.push(ApiError::bad_pointer(
                    &pointer,
                    format!("unknown parameter {key:?}"),
                ));
                continue;
            }
            match scalar_strings(value, false) {
                Some(values) => {
                    params.map.insert(
                        key.clone(),
                        Param {
                            values,
                            origin: Origin::Body(pointer),
                        },
                    );
                }
                None => errors.push(ApiError::bad_pointer(&pointer, "has the wrong type")),
            }
        }
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(errors)
        }
    }

    /// Adds `other`'s parameters that `self` does not have (the query wins on conflict).
    pub fn merge_missing(&mut self, other: Params) {
        for (key, param) in other.map {
            self.map.entry(key).or_insert(param);
        }
    }

    fn get(&self, name: &str) -> Option<&Param> {
        self.map.get(name)
    }

    /// Where `name` came from (query by default).
    pub fn source(&self, name: &str) -> Source {
        match self.get(name).map(|p| &p.origin) {
            Some(Origin::Body(pointer)) => Source::Pointer(pointer.clone()),
            _ => Source::Parameter(name.to_owned()),
        }
    }

    /// A scalar string, or empty.
    pub fn string(&self, name: &str) -> String {
        self.get(name)
            .and_then(|p| p.values.first().cloned())
            .unwrap_or_default()
    }

    /// Values of an array filter (empty when absent).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(|p| p.values.clone()).unwrap_or_default()
    }

    /// Comma-separated scalar split into values (`include=users,partner_integrations`).
    pub fn comma_list(&self, name: &str) -> Vec<String> {
        let raw = self.string(name);
        if raw.is_empty() {
            return Vec::new();
        }
        raw.split(',').map(|s| s.trim().to_owned()).collect()
    }

    /// An optional integer.
    pub fn int(&self, name: &str, errors: &mut Vec<ApiError>) -> Option<i32> {
        let raw = self.get(name)?.values.first()?.trim().to_owned();
        match raw.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(ApiError::bad_request(
                    self.source(name),
                    format!("{name} must be an integer"),
                ));
                None
            }
        }
    }

    /// An optional 64-bit integer.
    pub fn int64(&self, name: &str, errors: &mut Vec<ApiError>) -> Option<i64> {
        let raw = self.get(name)?.values.first()?.trim().to_owned();
        match raw.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(ApiError::bad_request(
                    self.source(name),
                    format!("{name} must be an integer"),
                ));
                None
            }
        }
    }

    /// The integers of an array filter (each that does not parse is an error).
    pub fn int64_list(&self, name: &str, errors: &mut Vec<ApiError>) -> Vec<i64> {
        let values = self.list(name);
        let parsed: Option<Vec<i64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
        parsed.unwrap_or_else(|| {
            let message = format!("{name} values must be integers");
            errors.push(ApiError::bad_request(self.source(name), message));
            Vec::new()
        })
    }

    /// An optional RFC 3339 time (`2026-12-06T10:00:00Z`).
    pub fn time(
        &self,
        name: &str,
        errors: &mut Vec<ApiError>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let raw = self.get(name)?.values.first()?.trim().to_owned();
        match chrono::DateTime::parse_from_rfc3339(&raw) {
            Ok(t) => Some(t.to_utc()),
            Err(_) => {
                errors.push(ApiError::bad_request(
                    self.source(name),
                    format!("{name} must be an RFC 3339 time, e.g. 2026-12-06T10:00:00Z"),
                ));
                None
            }
        }
    }

    /// An optional boolean (`true`/`false`/`1`/`0`).
    pub fn boolean(&self, name: &str, errors: &mut Vec<ApiError>) -> Option<bool> {
        let raw = self.get(name)?.values.first()?.to_owned();
        match raw.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                errors.push(ApiError::bad_request(
                    self.source(name),
                    format!("{name} must be true, false, 1 or 0"),
                ));
                None
            }
        }
    }

    /// Pairs for building links, in a stable order, with `page` and `page_token` left out.
    pub fn link_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (name, param) in &self.map {
            if name == "page" || name == "page_token" {
                continue;
            }
            if name.starts_with("filter[") && param.values.len() != 1 {
                for value in &param.values {
                    pairs.push((format!("{name}[]"), value.clone()));
                }
            } else if let Some(value) = param.values.first() {
                pairs.push((name.clone(), value.clone()));
            }
        }
        pairs
    }
}

/// JSON scalar or array → raw strings (`None` for objects, nested arrays, or arrays where scalars go).
fn scalar_strings(value: &Value, array_allowed: bool) -> Option<Vec<String>> {
    fn one(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(items) if array_allowed => items.iter().map(one).collect(),
        Value::String(s) if array_allowed => Some(s.split(',').map(str::to_owned).collect()),
        other => one(other).map(|s| vec![s]),
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: Accepts = Accepts {
        scalars: &["page", "per_page", "search", "include"],
        array_filters: &["categories"],
        bool_filters: &["preferred"],
        statuses: &[],
    };

    #[test]
    fn bracket_families_and_commas_are_merged() {
        let p = Params::from_query(
            "filter[categories][]=a&filter[categories][]=b&filter[categories]=c,d&filter[preferred]=1&page=2",
            &LIST,
        )
        .expect("valid");
        assert_eq!(p.list("filter[categories]"), ["a", "b", "c", "d"]);
        let mut errors = Vec::new();
        assert_eq!(p.boolean("filter[preferred]", &mut errors), Some(true));
        assert_eq!(p.int("page", &mut errors), Some(2));
        assert!(errors.is_empty());
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let errors = Params::from_query("page=1&page=2&colour=red&filter[size]=3", &LIST)
            .expect_err("invalid");
        let sources: Vec<Source> = errors.into_iter().map(|e| e.source).collect();
        assert_eq!(
            sources,
            [
                Source::Parameter("page".into()),
                Source::Parameter("colour".into()),
                Source::Parameter("filter[size]".into())
            ]
        );
    }

    #[test]
    fn body_params_fill_gaps_and_query_wins() {
        let body = serde_json::json!({"filter": {"categories": ["x"], "preferred": true}, "page": 3, "search": "b"});
        let mut p = Params::from_query("search=q", &LIST).expect("query");
        p.merge_missing(Params::from_body(&body, &LIST).expect("body"));
        assert_eq!(p.string("search"), "q");
        assert_eq!(p.list("filter[categories]"), ["x"]);
        assert_eq!(p.source("page"), Source::Pointer("/page".into()));
        let errors = Params::from_body(
            &serde_json::json!({"filter": {"nope": 1}, "page": {}}),
            &LIST,
        )
        .expect_err("invalid body");
        assert_eq!(errors.len(), 2);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const ACCEPTS: Accepts = Accepts {
        scalars: &[
            "business_uuid",
            "include",
            "search",
            "page",
            "per_page",
            "sort",
        ],
        array_filters: &["categories", "country_codes"],
        bool_filters: &["preferred", "active"],
        statuses: &[],
    };

    fn query_piece() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("page".to_owned()),
            Just("per_page".to_owned()),
            Just("search".to_owned()),
            Just("filter[categories][]".to_owned()),
            Just("filter[categories]".to_owned()),
            Just("filter[preferred]".to_owned()),
            Just("filter[".to_owned()),
            "[a-z\\[\\]%]{0,12}",
        ];
        (key, "[ -~]{0,12}").prop_map(|(k, v)| format!("{k}={v}"))
    }

    proptest! {
        #[test]
        fn any_query_string_parses_or_names_its_parameters(raw in "[ -~]{0,80}") {
            match Params::from_query(&raw, &ACCEPTS) {
                Ok(params) => {
                    let mut errors = Vec::new();
                    let _ = params.int("page", &mut errors);
                    let _ = params.boolean("filter[preferred]", &mut errors);
                    prop_assert!(errors.iter().all(|e| matches!(e.source, Source::Parameter(_))));
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    prop_assert!(errors.iter().all(|e| matches!(&e.source, Source::Parameter(p) if !p.is_empty() || raw.contains('='))));
                }
            }
        }

        #[test]
        fn bracket_queries_keep_every_filter_value(pieces in prop::collection::vec(query_piece(), 0..8)) {
            let raw = pieces.join("&");
            if let Ok(params) = Params::from_query(&raw, &ACCEPTS) {
                let expected: usize = form_urlencoded::parse(raw.as_bytes())
                    .map(|(k, v)| match k.as_ref() {
                        "filter[categories][]" => 1,
                        "filter[categories]" => v.split(',').count(),
                        _ => 0,
                    })
                    .sum();
                prop_assert_eq!(params.list("filter[categories]").len(), expected);
            }
        }

        #[test]
        fn json_bodies_never_panic(body in prop::collection::btree_map("(filter|page|search|include|[a-z]{1,5})", "[ -~]{0,8}", 0..5)) {
            let value = serde_json::Value::Object(body.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect());
            let _ = Params::from_body(&value, &ACCEPTS);
        }
    }
}
