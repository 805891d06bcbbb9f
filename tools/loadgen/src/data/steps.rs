//! The SQL of the generation: session-local helper functions and one `INSERT … SELECT … FROM
//! generate_series(…)` statement per step (staging tables first, so that the counters are set when
//! the partners are inserted).

use super::words::{
    CATEGORIES, COUNTRIES, NAME_CITY, NAME_FIRST, NAME_RARE, NAME_SECOND, NAME_THIRD, USER_FIRST,
    USER_LAST, WHOLESALER_CATEGORIES,
};
use super::{SEED_PRINCIPAL, Scale};

/// `ARRAY['a','b',…]` of constant words (the word lists hold no quotes).
fn array(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    format!("ARRAY[{}]", quoted.join(","))
}

/// Deterministic pseudo-random helpers, session-local (`pg_temp`): `rnd(g, salt)` is uniform in
/// `[0, 1)`, `pick(g, salt, n)` uniform in `0..n`, `skew(g, salt, n)` in `0..n` with density
/// ∝ 1/√x (the lowest 1% of values get 10% of the draws). Plain SQL functions, so the planner
/// inlines them.
pub(super) const HELPERS: &str = "
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

/// Drops the secondary indexes of the click events (on the partitioned table, so the partitions'
/// go with them) and the rollups' indexes and primary key, keeping their definitions
/// (`pg_get_indexdef`, `pg_get_constraintdef`) in temporary tables for [`CREATE_CLICK_INDEXES`];
/// the events' primary key stays (their ids arrive in order).
const DROP_CLICK_INDEXES: &str = "
CREATE TEMPORARY TABLE bench_click_indexes ON COMMIT DROP AS
SELECT c.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('partner_click_events'::regclass, 'partner_click_rollups'::regclass)
  AND NOT i.indisprimary;
CREATE TEMPORARY TABLE bench_click_keys ON COMMIT DROP AS
SELECT conname::text AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
WHERE conrelid = 'partner_click_rollups'::regclass AND contype = 'p';
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT name FROM bench_click_indexes LOOP
        EXECUTE format('DROP INDEX %I', r.name);
    END LOOP;
    FOR r IN SELECT name FROM bench_click_keys LOOP
        EXECUTE format('ALTER TABLE partner_click_rollups DROP CONSTRAINT %I', r.name);
    END LOOP;
END $$;";

/// Builds the indexes [`DROP_CLICK_INDEXES`] dropped from their definitions (a partitioned
/// index's is `ON ONLY` the parent; without `ONLY` it is built on every partition too).
const CREATE_CLICK_INDEXES: &str = "
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT name, def FROM bench_click_keys LOOP
        EXECUTE format('ALTER TABLE partner_click_rollups ADD CONSTRAINT %I ', r.name) || r.def;
    END LOOP;
    FOR r IN SELECT def FROM bench_click_indexes LOOP
        EXECUTE replace(r.def, ' ON ONLY ', ' ON ');
    END LOOP;
END $$;";

/// The SQL of every generation step, in order, with its name.
pub(super) fn generation_steps(scale: &Scale) -> Vec<(String, String)> {
    let Scale {
        partners: p,
        businesses: b,
        users: u,
        integrations,
        preferences,
        links,
        clicks,
        click_days,
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

    // The click events' monthly partitions of their history (migration 17).
    steps.push((
        "click partitions".to_owned(),
        format!(
            "SELECT partner_click_events_create_partition(m::date)
             FROM generate_series(date_trunc('month', now() - interval '{days} days'),
                                  date_trunc('month', now()), interval '1 month') AS m;",
            days = click_days + 1
        ),
    ));
    steps.push((
        "click indexes off".to_owned(),
        DROP_CLICK_INDEXES.to_owned(),
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
                        now() - interval '{click_days} days' + interval '{click_days} days' * (e.g::float8 / {clicks})
                 FROM (SELECT g, {click_partner} AS partner_id, {CLICK_TYPE_EXPR} AS event_type,
                              1 + pg_temp.pick(g, 74, {u}) AS user_id
                       FROM generate_series({from}, {to}) AS g) AS e
                 JOIN users u ON u.id = e.user_id
                 ORDER BY e.g;"
            ),
        ));
        from = to + 1;
    }

    // Their hourly rollups (migration 18), as the service writes them.
    steps.push((
        "click rollups".to_owned(),
        "INSERT INTO partner_click_rollups (partner_id, business_id, event_type, hour, clicks)
         SELECT partner_id, coalesce(business_id, 0), event_type,
                date_trunc('hour', created_at, 'UTC'), count(*)
         FROM partner_click_events GROUP BY 1, 2, 3, 4;"
            .to_owned(),
    ));
    steps.push((
        "click indexes on".to_owned(),
        CREATE_CLICK_INDEXES.to_owned(),
    ));

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
