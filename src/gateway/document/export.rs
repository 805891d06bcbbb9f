//! The export's lines: NDJSON (one partner resource, as the other documents render it, per line)
//! and CSV (RFC 4180: a header line, then one row per partner; lists and metadata as JSON text).

use bytes::Bytes;

use super::{IncludedSet, integration_status_name, partner_resource, partner_status_name, time};
use crate::grpc::convert::struct_to_json;
use crate::grpc::pb;
use crate::model::partner::Includes;

/// A partner as one NDJSON line (its JSON:API resource object and `\n`).
pub fn ndjson_line(p: &pb::Partner, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut set = IncludedSet::default();
    serde_json::to_writer(
        &mut *out,
        &partner_resource(p, Includes::default(), &mut set),
    )?;
    out.push(b'\n');
    Ok(())
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 23] = [
    "id",
    "name",
    "description",
    "email",
    "logo_url",
    "website_url",
    "video_url",
    "categories",
    "wholesaler_categories",
    "country_codes",
    "tags",
    "status",
    "active",
    "external_id",
    "metadata",
    "clicks",
    "website_clicks",
    "video_clicks",
    "users_count",
    "preferred",
    "integration_status",
    "created_at",
    "updated_at",
];

/// The CSV header line.
pub fn csv_header() -> Bytes {
    Bytes::from(format!("{}\r\n", CSV_COLUMNS.join(",")))
}

/// Appends `field` to `out` as RFC 4180 says: quoted (inner quotes doubled) when it holds a
/// comma, a quote, CR or LF, as it is otherwise.
fn csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// A list as JSON text (`["pos","delivery"]`): unambiguous whatever the values hold.
fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

/// A partner as one CSV row (ending with CRLF), appended to `out`.
pub fn csv_row(p: &pb::Partner, out: &mut String) {
    let stats = p.stats.unwrap_or_default();
    let flag = |b: Option<bool>| b.map_or(String::new(), |b| b.to_string());
    let fields: [String; 23] = [
        p.id.to_string(),
        p.name.clone(),
        p.description.clone(),
        p.email.clone(),
        p.logo_url.clone(),
        p.website_url.clone(),
        p.video_url.clone(),
        json_list(&p.categories),
        json_list(&p.wholesaler_categories),
        json_list(&p.country_codes),
        json_list(&p.tags),
        partner_status_name(p.status).unwrap_or_default().to_owned(),
        p.active.to_string(),
        p.external_id.clone().unwrap_or_default(),
        p.metadata
            .as_ref()
            .map_or_else(|| "{}".to_owned(), |m| struct_to_json(m).to_string()),
        stats.clicks.to_string(),
        stats.website_clicks.to_string(),
        stats.video_clicks.to_string(),
        stats.users_count.to_string(),
        flag(p.preferred),
        integration_status_name(p.integration_status)
            .unwrap_or_default()
            .to_owned(),
        time(&p.created_at).unwrap_or_default(),
        time(&p.updated_at).unwrap_or_default(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        for field in ["plain", "a,b", "say \"hi\"", "two\nlines", ""] {
            csv_field(&mut out, field);
            out.push('|');
        }
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"||");
    }

    #[test]
    fn a_row_has_every_column() {
        let p = pb::Partner {
            id: 7,
            name: "Bar, \"Inc\"".into(),
            tags: vec!["a".into(), "b,c".into()],
            status: pb::PartnerStatus::Available as i32,
            active: true,
            ..Default::default()
        };
        let mut row = String::new();
        csv_row(&p, &mut row);
        assert!(
            row.starts_with("7,\"Bar, \"\"Inc\"\"\",,,,,,[],[],[],\"[\"\"a\"\",\"\"b,c\"\"]\",available,true,,{},0,0,0,0,,,,\r\n"),
            "{row}"
        );
        assert_eq!(csv_header().len(), CSV_COLUMNS.join(",").len() + 2);
    }
}
