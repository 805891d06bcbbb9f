//! `partners seed-bench`: the large, skewed benchmark data set (see `BENCHMARKS.md`).
//!
//! Everything is generated inside Postgres with `INSERT … SELECT … FROM generate_series(…)`: no row
//! crosses the wire, so the default set (100,000 partners, 5,000,000 click events, …) loads in
//! minutes. Every "random" choice is a deterministic hash of the row number (`hashint8extended`,
//! a different salt per attribute), so two loads of the same [`Scale`] produce the same rows.
//!
//! Shape of the data (defaults; every count is a [`Scale`] flag):
//! - **partners**: names of two to four words from fixed lists, so a search on one word
//!   ([`SEARCH_WORD`]) matches about 2.5% of them; one in a thousand carries one of a handful of
//!   rare words. 1–3 of twelve categories with a popularity skew (`pos` and `payments` most
//!   common); exactly 5% (every 20th id) are wholesalers with 1–3 wholesaler categories; 1–3 of
//!   fifteen country codes (skewed towards `DE`); status 80% available, 12% coming_soon, 8%
//!   unavailable; 90% active; none deleted.
//! - **businesses** and **users**: user `n ≤ businesses` belongs to business `n` (every business
//!   has a user), the others to a business picked with a quadratic skew (business 1 is the
//!   largest).
//! - **integrations**, **preferences**, **partner-user links**: pairs drawn with a skew towards low
//!   business and partner ids, de-duplicated on their unique keys, then cut to the requested
//!   count (the real counts are printed; they are lower only when the requested count is close
//!   to the number of possible pairs).
//! - **click events**: 20% of them on the first 1% of partner ids (the "hot" partners), the rest
//!   spread uniformly over the other partners; 70% `website`, 30% `video`; each by a uniformly
//!   chosen user with that user's business; `created_at` increasing with the id over the past year.
//! - **counters**: `website_clicks`, `video_clicks` and `users_count` are computed from the same
//!   generators before the partners are inserted, so they equal the counts of the rows (no
//!   UPDATE of 100,000 freshly loaded rows, hence no bloat).
//!
//! The load wipes every data table first (`TRUNCATE … RESTART IDENTITY CASCADE`, API keys
//! included), runs in one transaction, and finishes with `VACUUM (ANALYZE)` of the tables.
//! When the connecting role is a superuser, foreign-key triggers are skipped for the transaction
//! (`SET LOCAL session_replication_role = replica`); the data is consistent by construction and
//! a few cheap range checks confirm it.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Uuid as SqlUuid};
use uuid::Uuid;

use crate::auth;
use crate::error::{Error, Result};

/// A word of about 2.5% of partner names, for a selective `search`.
pub const SEARCH_WORD: &str = "harbor";
/// The two most common categories (a filter on both is "any of").
pub const COMMON_CATEGORIES: [&str; 2] = ["pos", "payments"];
/// The most common country code.
pub const COMMON_COUNTRY: &str = "DE";
/// Principal recorded on the generated click events.
pub const SEED_PRINCIPAL: &str = "service:seed-bench";

/// Categories, most popular first.
const CATEGORIES: [&str; 12] = [
    "pos",
    "payments",
    "accounting",
    "delivery",
    "reservations",
    "marketing",
    "loyalty",
    "scheduling",
    "inventory",
    "ecommerce",
    "payroll",
    "analytics",
];
const WHOLESALER_CATEGORIES: [&str; 10] = [
    "beverages",
    "produce",
    "dairy",
    "meat",
    "bakery",
    "frozen",
    "dry_goods",
    "wine",
    "cleaning",
    "packaging",
];
/// Country codes, most common first.
const COUNTRIES: [&str; 15] = [
    "DE", "GB", "FR", "AT", "NL", "ES", "IT", "CH", "BE", "PL", "SE", "DK", "IE", "PT", "US",
];
const NAME_FIRST: [&str; 40] = [
    "Blue", "Green", "Red", "Silver", "Golden", "Rapid", "Smart", "Bright", "Urban", "Nordic",
    "Alpine", "Coastal", "Prime", "Clever", "Swift", "Solid", "Fresh", "Royal", "Happy", "Simple",
    "Modern", "Classic", "Global", "Local", "Central", "United", "First", "Next", "True", "Open",
    "Clear", "Pure", "Bold", "Grand", "Little", "Great", "Wild", "Quiet", "Lucky", "Sunny",
];
/// Second words; [`SEARCH_WORD`] is one of them and no other word of any list contains it.
const NAME_SECOND: [&str; 40] = [
    "Harbor", "River", "Mountain", "Forest", "Bridge", "Market", "Garden", "Table", "Kitchen",
    "Oven", "Plate", "Spoon", "Ledger", "Till", "Counter", "Cellar", "Bakery", "Orchard", "Valley",
    "Meadow", "Tower", "Castle", "Lantern", "Anchor", "Compass", "Pepper", "Basil", "Olive",
    "Lemon", "Cedar", "Maple", "Falcon", "Otter", "Badger", "Heron", "Beacon", "Summit", "Canyon",
    "Island", "Prairie",
];
/// Rare second words (one partner in a thousand).
const NAME_RARE: [&str; 5] = ["Quokka", "Zephyr", "Marzipan", "Juniper", "Xylophone"];
const NAME_THIRD: [&str; 12] = [
    "Systems",
    "Labs",
    "Group",
    "GmbH",
    "Ltd",
    "Solutions",
    "Direct",
    "Partners",
    "Works",
    "Hub",
    "Cloud",
    "Supply",
];
/// Optional fourth words (half of the names).
const NAME_CITY: [&str; 16] = [
    "Berlin",
    "Hamburg",
    "Munich",
    "London",
    "Paris",
    "Vienna",
    "Madrid",
    "Milan",
    "Zurich",
    "Amsterdam",
    "Lisbon",
    "Dublin",
    "Oslo",
    "Prague",
    "Warsaw",
    "Lyon",
];
const USER_FIRST: [&str; 12] = [
    "Ada", "Bob", "Chloe", "Dan", "Eva", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luis",
];
const USER_LAST: [&str; 10] = [
    "Meyer", "Smith", "Dubois", "Rossi", "Garcia", "Novak", "Jansen", "Berg", "Kowalski", "Silva",
];

/// Size of the benchmark data set.
#[derive(Debug, Clone, clap::Args)]
pub struct Scale {
    /// Number of partners.
    #[arg(long, default_value_t = 100_000)]
    pub partners: i64,
    /// Number of businesses.
    #[arg(long, default_value_t = 1_000)]
    pub businesses: i64,
    /// Number of users.
    #[arg(long, default_value_t = 50_000)]
    pub users: i64,
    /// Number of partner integrations (unique per business and partner).
    #[arg(long, default_value_t = 200_000)]
    pub integrations: i64,
    /// Number of partner preferences (unique per business and partner).
    #[arg(long, default_value_t = 100_000)]
    pub preferences: i64,
    /// Number of partner-user links (unique per partner and user).
    #[arg(long, default_value_t = 500_000)]
    pub links: i64,
    /// Number of click events.
    #[arg(long, default_value_t = 5_000_000)]
    pub clicks: i64,
}

impl Default for Scale {
    /// The full data set of the performance issue.
    fn default() -> Self {
        Scale {
            partners: 100_000,
            businesses: 1_000,
            users: 50_000,
            integrations: 200_000,
            preferences: 100_000,
            links: 500_000,
            clicks: 5_000_000,
        }
    }
}

impl Scale {
    /// The tiny set of the CI smoke run.
    pub fn smoke() -> Self {
        Scale {
            partners: 2_000,
            businesses: 20,
            users: 500,
            integrations: 2_000,
            preferences: 1_000,
            links: 3_000,
            clicks: 20_000,
        }
    }

    fn validate(&self) -> Result<()> {
        let at_least_one = [
            ("partners", self.partners),
            ("businesses", self.businesses),
            ("users", self.users),
        ];
        for (field, value) in at_least_one {
            if !(1..=1_000_000_000).contains(&value) {
                return Err(Error::invalid(field, "must be between 1 and 1000000000"));
            }
        }
        let non_negative = [
            ("integrations", self.integrations),
            ("preferences", self.preferences),
            ("links", self.links),
            ("clicks", self.clicks),
        ];
        for (field, value) in non_negative {
            if !(0..=1_000_000_000).contains(&value) {
                return Err(Error::invalid(field, "must be between 0 and 1000000000"));
            }
        }
        Ok(())
    }
}

/// `ARRAY['a','b',…]` of constant words (the lists above hold no quotes).
fn array(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    format!("ARRAY[{}]", quoted.join(","))
}

/// Deterministic pseudo-random helpers, session-local (`pg_temp`): `rnd(g, salt)` is uniform in
/// `[0, 1)`, `pick(g, salt, n)` uniform in `0..n`, `skew(g, salt, n)` in `0..n` with density
/// ∝ 1/√x (the lowest 1% of values get 10% of the draws). Plain SQL functions, so the planner
/// inlines them.
const HELPERS: &str = "
CREATE OR REPLACE FUNCTION pg_temp.rnd(g bigint, salt bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashint8extended(g, salt) >> 11) + 4503599627370496)::float8 / 9007199254740992.0 $$;
CREATE OR REPLACE FUNCTION pg_temp.pick(g bigint, salt bigint, n bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(pg_temp.rnd(g, salt) * n)::bigint $$;
CREATE OR REPLACE FUNCTION pg_temp.skew(g bigint, salt bigint, n bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(pg_temp.rnd(g, salt) ^ 2 * n)::bigint $$;
";

/// The partner id of click event `g`: 20% on the first 1% of ids, the rest on the others.
fn click_partner_expr(scale: &Scale) -> String {
    let hot = (scale.partners / 100).max(1);
    if scale.partners <= hot {
        return format!("1 + pg_temp.pick(g, 71, {})", scale.partners);
    }
    format!(
        "CASE WHEN pg_temp.rnd(g, 70) < 0.2 THEN 1 + pg_temp.pick(g, 71, {hot}) \
         ELSE {} + pg_temp.pick(g, 72, {}) END",
        hot + 1,
        scale.partners - hot
    )
}

/// The event type of click event `g`.
const CLICK_TYPE_EXPR: &str = "CASE WHEN pg_temp.rnd(g, 73) < 0.7 THEN 'website' ELSE 'video' END";

/// Runs one step, logs its duration, and names it in the error.
fn step(conn: &mut PgConnection, name: &str, sql: &str) -> Result<()> {
    let started = Instant::now();
    conn.batch_execute(sql)
        .map_err(|e| Error::Internal(format!("seed-bench step `{name}`: {e}")))?;
    tracing::info!(
        step = name,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "seed-bench step done"
    );
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    v: bool,
}

fn count(conn: &mut PgConnection, sql: &str) -> Result<i64> {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .map(|c| c.n)
        .map_err(|e| Error::Internal(format!("seed-bench `{sql}`: {e}")))
}

/// The SQL of every generation step, in order, with its name.
fn generation_steps(scale: &Scale) -> Vec<(String, String)> {
    let Scale {
        partners: p,
        businesses: b,
        users: u,
        integrations,
        preferences,
        links,
        clicks,
    } = scale.clone();
    let categories = array(&CATEGORIES);
    let wholesaler_categories = array(&WHOLESALER_CATEGORIES);
    let countries = array(&COUNTRIES);
    let click_partner = click_partner_expr(scale);
    let mut steps = Vec::new();

    steps.push((
        "businesses".to_owned(),
        format!(
            "INSERT INTO businesses (id, uuid, name, country_code, created_at, updated_at)
             SELECT g, md5('bench-business-' || g)::uuid, 'Bench Business ' || g,
                    ({countries})[1 + pg_temp.skew(g, 10, 15)],
                    now() - interval '3 years' * pg_temp.rnd(g, 11), now()
             FROM generate_series(1, {b}) AS g;"
        ),
    ));

    steps.push((
        "users".to_owned(),
        format!(
            "INSERT INTO users (id, uuid, business_id, email, name, created_at, updated_at)
             SELECT g, md5('bench-user-' || g)::uuid,
                    CASE WHEN g <= {b} THEN g ELSE 1 + pg_temp.skew(g, 20, {b}) END,
                    'user' || g || '@bench.example',
                    ({first})[1 + pg_temp.pick(g, 21, {nf})] || ' ' || ({last})[1 + pg_temp.pick(g, 22, {nl})],
                    now() - interval '2 years' * pg_temp.rnd(g, 23), now()
             FROM generate_series(1, {u}) AS g;",
            first = array(&USER_FIRST),
            last = array(&USER_LAST),
            nf = USER_FIRST.len(),
            nl = USER_LAST.len(),
        ),
    ));

    // Partner-user links first (into a temporary table), so users_count can be set on insert.
    // Candidates are drawn with a skew towards low partner ids, de-duplicated on (partner, user)
    // and cut to the requested count in draw order.
    steps.push((
        "partner-user links (staging)".to_owned(),
        format!(
            "CREATE TEMPORARY TABLE bench_links ON COMMIT DROP AS
             SELECT partner_id, user_id, now() - interval '1 year' * pg_temp.rnd(first_g, 62) AS created_at
             FROM (SELECT partner_id, user_id, min(g) AS first_g
                   FROM (SELECT g, 1 + pg_temp.skew(g, 61, {p}) AS partner_id,
                                1 + pg_temp.pick(g, 60, {u}) AS user_id
                         FROM generate_series(1, {n}) AS g) AS candidates
                   GROUP BY partner_id, user_id
                   ORDER BY min(g)
                   LIMIT {links}) AS picked;",
            n = links + links * 3 / 10 + 10,
        ),
    ));

    // Click counts per partner, from the same generator as the events themselves.
    steps.push((
        "click counters (staging)".to_owned(),
        format!(
            "CREATE TEMPORARY TABLE bench_click_counts ON COMMIT DROP AS
             SELECT partner_id,
                    count(*) FILTER (WHERE event_type = 'website') AS website,
                    count(*) FILTER (WHERE event_type = 'video') AS video
             FROM (SELECT {click_partner} AS partner_id, {CLICK_TYPE_EXPR} AS event_type
                   FROM generate_series(1, {clicks}) AS g) AS events
             GROUP BY partner_id;
             CREATE TEMPORARY TABLE bench_user_counts ON COMMIT DROP AS
             SELECT partner_id, count(*) AS users FROM bench_links GROUP BY partner_id;"
        ),
    ));

    steps.push((
        "partners".to_owned(),
        format!(
            "INSERT INTO partners (id, name, description, email, logo_url, website_url, video_url,
                                   categories, wholesaler_categories, country_codes, tags, status,
                                   active, external_id, metadata, website_clicks, video_clicks,
                                   users_count, created_at, updated_at)
             SELECT s.g, s.name,
                    s.name || ' helps restaurants and shops with ' || s.categories[1]
                        || '. Onboarding in days, support in ' || s.country_codes[1]
                        || ', and an open API for your own tools.',
                    'hello@partner' || s.g || '.example',
                    'https://partner' || s.g || '.example/logo.png',
                    'https://partner' || s.g || '.example',
                    'https://video.example/partner' || s.g,
                    s.categories, s.wholesaler_categories, s.country_codes,
                    ARRAY['bench', 'tag' || pg_temp.pick(s.g, 40, 30)],
                    CASE WHEN s.r_status < 0.80 THEN 'available'
                         WHEN s.r_status < 0.92 THEN 'coming_soon'
                         ELSE 'unavailable' END,
                    pg_temp.rnd(s.g, 41) < 0.9,
                    'bench-' || s.g,
                    jsonb_build_object('tier', (ARRAY['gold','silver','bronze'])[1 + pg_temp.pick(s.g, 42, 3)]),
                    coalesce(c.website, 0), coalesce(c.video, 0), coalesce(l.users, 0),
                    s.created_at, s.created_at + (now() - s.created_at) * pg_temp.rnd(s.g, 44)
             FROM (
                 SELECT g,
                        ({first})[1 + pg_temp.pick(g, 30, {n_first})] || ' '
                            || CASE WHEN pg_temp.pick(g, 31, 1000) = 0
                                    THEN ({rare})[1 + pg_temp.pick(g, 32, {n_rare})]
                                    ELSE ({second})[1 + pg_temp.pick(g, 33, {n_second})] END
                            || ' ' || ({third})[1 + pg_temp.pick(g, 34, {n_third})]
                            || CASE WHEN pg_temp.rnd(g, 35) < 0.5
                                    THEN ' ' || ({city})[1 + pg_temp.pick(g, 36, {n_city})]
                                    ELSE '' END AS name,
                        CASE WHEN g % 20 = 0 THEN
                                 CASE WHEN pg_temp.rnd(g, 37) < 0.3
                                      THEN ARRAY['wholesaler', 'delivery'] ELSE ARRAY['wholesaler'] END
                             ELSE (ARRAY[({categories})[1 + c1],
                                         ({categories})[1 + (c1 + cd) % 12],
                                         ({categories})[1 + (c1 + 2 * cd) % 12]])[1:ck]
                        END AS categories,
                        CASE WHEN g % 20 = 0 THEN
                                 (ARRAY[({wholesaler_categories})[1 + w1],
                                        ({wholesaler_categories})[1 + (w1 + wd) % 10],
                                        ({wholesaler_categories})[1 + (w1 + 2 * wd) % 10]])[1:wk]
                             ELSE '{{}}'::text[]
                        END AS wholesaler_categories,
                        (ARRAY[({countries})[1 + k1],
                               ({countries})[1 + (k1 + kd) % 15],
                               ({countries})[1 + (k1 + 2 * kd) % 15]])[1:kk] AS country_codes,
                        pg_temp.rnd(g, 38) AS r_status,
                        now() - interval '3 years' * pg_temp.rnd(g, 39) AS created_at
                 FROM (SELECT g,
                              pg_temp.skew(g, 50, 12) AS c1, 1 + pg_temp.pick(g, 51, 5) AS cd,
                              1 + pg_temp.pick(g, 52, 3) AS ck,
                              pg_temp.pick(g, 53, 10) AS w1, 1 + pg_temp.pick(g, 54, 4) AS wd,
                              1 + pg_temp.pick(g, 55, 3) AS wk,
                              pg_temp.skew(g, 56, 15) AS k1, 1 + pg_temp.pick(g, 57, 4) AS kd,
                              1 + pg_temp.pick(g, 58, 3) AS kk
                       FROM generate_series(1, {p}) AS g) AS draws
             ) AS s
             LEFT JOIN bench_click_counts c ON c.partner_id = s.g
             LEFT JOIN bench_user_counts l ON l.partner_id = s.g
             ORDER BY s.g;",
            first = array(&NAME_FIRST),
            n_first = NAME_FIRST.len(),
            rare = array(&NAME_RARE),
            n_rare = NAME_RARE.len(),
            second = array(&NAME_SECOND),
            n_second = NAME_SECOND.len(),
            third = array(&NAME_THIRD),
            n_third = NAME_THIRD.len(),
            city = array(&NAME_CITY),
            n_city = NAME_CITY.len(),
        ),
    ));

    steps.push((
        "partner-user links".to_owned(),
        "INSERT INTO partner_users (partner_id, user_id, business_id, created_at)
         SELECT l.partner_id, l.user_id, u.business_id, l.created_at
         FROM bench_links l JOIN users u ON u.id = l.user_id ORDER BY l.partner_id, l.user_id;"
            .to_owned(),
    ));

    steps.push((
        "integrations".to_owned(),
        format!(
            "INSERT INTO partner_integrations (id, business_id, partner_id, status, created_at, updated_at)
             SELECT row_number() OVER (ORDER BY first_g), business_id, partner_id,
                    CASE WHEN pg_temp.rnd(first_g, 82) < 0.60 THEN 'active'
                         WHEN pg_temp.rnd(first_g, 82) < 0.80 THEN 'pending'
                         WHEN pg_temp.rnd(first_g, 82) < 0.92 THEN 'inactive'
                         ELSE 'failed' END,
                    now() - interval '2 years' * pg_temp.rnd(first_g, 83),
                    now() - interval '1 year' * pg_temp.rnd(first_g, 84)
             FROM (SELECT business_id, partner_id, min(g) AS first_g
                   FROM (SELECT g, 1 + pg_temp.skew(g, 80, {b}) AS business_id,
                                1 + pg_temp.skew(g, 81, {p}) AS partner_id
                         FROM generate_series(1, {n}) AS g) AS candidates
                   GROUP BY business_id, partner_id
                   ORDER BY min(g)
                   LIMIT {integrations}) AS picked;",
            n = integrations + integrations / 2 + 10,
        ),
    ));

    steps.push((
        "preferences".to_owned(),
        format!(
            "INSERT INTO partner_preferences (business_id, partner_id, created_at)
             SELECT business_id, partner_id, now() - interval '2 years' * pg_temp.rnd(first_g, 92)
             FROM (SELECT business_id, partner_id, min(g) AS first_g
                   FROM (SELECT g, 1 + pg_temp.skew(g, 90, {b}) AS business_id,
                                1 + pg_temp.skew(g, 91, {p}) AS partner_id
                         FROM generate_series(1, {n}) AS g) AS candidates
                   GROUP BY business_id, partner_id
                   ORDER BY min(g)
                   LIMIT {preferences}) AS picked
             ORDER BY business_id, partner_id;",
            n = preferences + preferences / 2 + 10,
        ),
    ));

    // Click events in chunks of one million (progress in the log), ids in time order.
    const CHUNK: i64 = 1_000_000;
    let mut from = 1;
    while from <= clicks {
        let to = (from + CHUNK - 1).min(clicks);
        steps.push((
            format!("click events {from}..={to}"),
            format!(
                "INSERT INTO partner_click_events (id, partner_id, user_id, business_id, event_type,
                                                   principal, idempotency_key, fingerprint, created_at)
                 SELECT e.g, e.partner_id, u.id, u.business_id, e.event_type,
                        '{SEED_PRINCIPAL}', NULL, 'seed-bench-' || e.g,
                        now() - interval '365 days' + interval '365 days' * (e.g::float8 / {clicks})
                 FROM (SELECT g, {click_partner} AS partner_id, {CLICK_TYPE_EXPR} AS event_type,
                              1 + pg_temp.pick(g, 74, {u}) AS user_id
                       FROM generate_series({from}, {to}) AS g) AS e
                 JOIN users u ON u.id = e.user_id
                 ORDER BY e.g;"
            ),
        ));
        from = to + 1;
    }

    // Serial columns continue after the generated ids.
    steps.push((
        "sequences".to_owned(),
        "SELECT setval(pg_get_serial_sequence('businesses', 'id'), greatest((SELECT max(id) FROM businesses), 1));
         SELECT setval(pg_get_serial_sequence('users', 'id'), greatest((SELECT max(id) FROM users), 1));
         SELECT setval(pg_get_serial_sequence('partners', 'id'), greatest((SELECT max(id) FROM partners), 1));
         SELECT setval(pg_get_serial_sequence('partner_integrations', 'id'),
                       greatest((SELECT max(id) FROM partner_integrations), 1));
         SELECT setval(pg_get_serial_sequence('partner_click_events', 'id'),
                       greatest((SELECT max(id) FROM partner_click_events), 1));"
            .to_owned(),
    ));
    steps
}

/// Cheap checks that the generated foreign keys point at existing rows (ranges via indexes).
fn check_ranges(conn: &mut PgConnection, scale: &Scale) -> Result<()> {
    // (what, table, column, largest valid id)
    let ranges = [
        (
            "click events outside the partner range",
            "partner_click_events",
            "partner_id",
            scale.partners,
        ),
        (
            "links outside the partner range",
            "partner_users",
            "partner_id",
            scale.partners,
        ),
        (
            "links outside the user range",
            "partner_users",
            "user_id",
            scale.users,
        ),
        (
            "users outside the business range",
            "users",
            "business_id",
            scale.businesses,
        ),
    ];
    let checks = ranges.map(|(what, table, column, max)| {
        (
            what,
            format!(
                "SELECT count(*) AS n FROM (SELECT min({column}) AS lo, max({column}) AS hi \
                 FROM {table}) r WHERE r.lo < 1 OR r.hi > {max}"
            ),
        )
    });
    for (what, sql) in checks {
        if count(conn, &sql)? != 0 {
            return Err(Error::Internal(format!("seed-bench: {what}")));
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct KeyUser {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    uuid: Uuid,
    #[diesel(sql_type = SqlUuid)]
    business_uuid: Uuid,
    #[diesel(sql_type = Text)]
    business_name: String,
}

/// Creates a service key (`seed-bench`) and a user key for the benchmark user: the first user of
/// the first (and largest) business. Returns the `key=value` lines of [`seed`] except the
/// timing; usable on an already loaded database (the load bench does so with `--skip-seed`).
pub fn create_keys(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    let internal = |what: &str, e: diesel::result::Error| {
        Error::Internal(format!("seed-bench keys ({what}): {e}"))
    };
    let user: KeyUser = diesel::sql_query(
        "SELECT u.id, u.uuid, b.uuid AS business_uuid, b.name AS business_name FROM users u \
         JOIN businesses b ON b.id = u.business_id \
         WHERE u.business_id = (SELECT min(id) FROM businesses) ORDER BY u.id LIMIT 1",
    )
    .get_result(conn)
    .optional()
    .map_err(|e| internal("find the user", e))?
    .ok_or_else(|| Error::Internal("seed-bench keys: no user in the first business".into()))?;
    let service_key = auth::create_key(conn, None, "seed-bench")?;
    let user_key = auth::create_key(conn, Some(user.id), "seed-bench user")?;
    let partners = count(
        conn,
        "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL",
    )?;
    let max_partner_id = count(conn, "SELECT coalesce(max(id), 0) AS n FROM partners")?;
    tracing::info!(business = %user.business_name, user = %user.uuid, "benchmark keys created");
    Ok(vec![
        ("service_key".into(), service_key),
        ("user_key".into(), user_key),
        ("business_uuid".into(), user.business_uuid.to_string()),
        ("user_uuid".into(), user.uuid.to_string()),
        ("partners".into(), partners.to_string()),
        ("max_partner_id".into(), max_partner_id.to_string()),
    ])
}

/// Loads the data set (replacing every row of the data tables, API keys included) and creates a
/// service key and a user key; returns `key=value` lines to print: `service_key`, `user_key`,
/// `business_uuid` (the user's business), `user_uuid`, `partners`, `max_partner_id`, the real
/// row counts of the other tables, the search word, and `seconds` (load time).
pub fn seed(conn: &mut PgConnection, scale: &Scale) -> Result<Vec<(String, String)>> {
    scale.validate()?;
    let started = Instant::now();
    tracing::info!(?scale, "seed-bench: loading");
    let steps = generation_steps(scale);
    conn.transaction::<_, Error, _>(|conn| {
        let superuser =
            diesel::sql_query("SELECT rolsuper AS v FROM pg_roles WHERE rolname = current_user")
                .get_result::<Flag>(conn)
                .map(|f| f.v)
                .unwrap_or(false);
        step(
            conn,
            "settings and helpers",
            &format!(
                "SET LOCAL work_mem = '256MB'; SET LOCAL synchronous_commit = off;{}{HELPERS}",
                if superuser {
                    // Foreign-key triggers off for this transaction: the rows are consistent
                    // by construction (checked below).
                    " SET LOCAL session_replication_role = replica;"
                } else {
                    ""
                }
            ),
        )?;
        step(
            conn,
            "truncate",
            "TRUNCATE partner_click_events, partner_users, partner_preferences, \
             partner_integrations, api_keys, partners, users, businesses RESTART IDENTITY CASCADE;",
        )?;
        for (name, sql) in &steps {
            step(conn, name, sql)?;
        }
        // Triggers are off in replica mode: tell running services' search indexes (migration 9).
        step(conn, "search version", "SELECT partners_search_changed();")?;
        check_ranges(conn, scale)
    })?;
    let loaded = started.elapsed();
    tracing::info!(
        seconds = format!("{:.1}", loaded.as_secs_f64()),
        "seed-bench: rows committed"
    );
    step(
        conn,
        "vacuum analyze",
        "VACUUM (ANALYZE) businesses, users, partners, partner_users, partner_integrations, \
         partner_preferences, partner_click_events, api_keys;",
    )?;

    let mut out = create_keys(conn)?;
    let counts = [
        ("businesses", "SELECT count(*) AS n FROM businesses"),
        ("users", "SELECT count(*) AS n FROM users"),
        (
            "integrations",
            "SELECT count(*) AS n FROM partner_integrations",
        ),
        (
            "preferences",
            "SELECT count(*) AS n FROM partner_preferences",
        ),
        ("links", "SELECT count(*) AS n FROM partner_users"),
        ("clicks", "SELECT count(*) AS n FROM partner_click_events"),
        (
            "wholesalers",
            "SELECT count(*) AS n FROM partners WHERE categories @> ARRAY['wholesaler']",
        ),
    ];
    for (key, sql) in counts {
        out.push((key.to_owned(), count(conn, sql)?.to_string()));
    }
    let search_matches = count(
        conn,
        &format!("SELECT count(*) AS n FROM partners WHERE lower(name) LIKE '%{SEARCH_WORD}%'"),
    )?;
    out.push(("search_word".into(), SEARCH_WORD.to_owned()));
    out.push(("search_matches".into(), search_matches.to_string()));
    let seconds = started.elapsed().as_secs_f64();
    out.push(("seconds".into(), format!("{seconds:.1}")));
    tracing::info!(seconds = format!("{seconds:.1}"), "seed-bench: done");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_word_is_only_in_its_own_name_word() {
        let word = SEARCH_WORD.to_lowercase();
        let lists: [&[&str]; 5] = [
            &NAME_FIRST,
            &NAME_SECOND,
            &NAME_RARE,
            &NAME_THIRD,
            &NAME_CITY,
        ];
        let holders: Vec<&str> = lists
            .iter()
            .flat_map(|l| l.iter())
            .filter(|w| w.to_lowercase().contains(&word))
            .copied()
            .collect();
        assert_eq!(holders, vec!["Harbor"]);
    }

    #[test]
    fn defaults_match_the_issue() {
        let s = Scale::default();
        assert_eq!(
            (s.partners, s.businesses, s.users, s.integrations),
            (100_000, 1_000, 50_000, 200_000)
        );
        assert_eq!(
            (s.preferences, s.links, s.clicks),
            (100_000, 500_000, 5_000_000)
        );
        assert!(Scale::smoke().validate().is_ok());
    }
}
