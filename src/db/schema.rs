//! Diesel table definitions, as `diesel print-schema` writes them for `migrations/`.

diesel::table! {
    api_keys (id) {
        id -> Int8,
        prefix -> Text,
        secret_hash -> Bytea,
        kind -> Text,
        user_id -> Nullable<Int8>,
        name -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    businesses (id) {
        id -> Int8,
        uuid -> Uuid,
        name -> Text,
        country_code -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        preferences_version -> Int8,
    }
}

diesel::table! {
    partner_click_events (id) {
        id -> Int8,
        partner_id -> Int8,
        user_id -> Nullable<Int8>,
        business_id -> Nullable<Int8>,
        event_type -> Text,
        principal -> Text,
        idempotency_key -> Nullable<Text>,
        fingerprint -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    partner_integrations (id) {
        id -> Int8,
        business_id -> Int8,
        partner_id -> Int8,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    partner_preferences (business_id, partner_id) {
        business_id -> Int8,
        partner_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    partner_search_state (singleton) {
        singleton -> Bool,
        version -> Int8,
        reset_version -> Int8,
    }
}

diesel::table! {
    partner_changes (id) {
        id -> Int8,
        sequence -> Nullable<Int8>,
        kind -> Text,
        partner_id -> Int8,
        business_id -> Nullable<Int8>,
        user_id -> Nullable<Int8>,
        changed_fields -> Array<Text>,
        occurred_at -> Timestamptz,
        partner -> Nullable<Jsonb>,
    }
}

diesel::table! {
    partner_change_state (singleton) {
        singleton -> Bool,
        pruned_through -> Int8,
    }
}

diesel::table! {
    partner_users (partner_id, user_id) {
        partner_id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
        business_id -> Int8,
    }
}

diesel::table! {
    partners (id) {
        id -> Int8,
        name -> Text,
        description -> Text,
        email -> Text,
        logo_url -> Text,
        website_url -> Text,
        video_url -> Text,
        categories -> Array<Text>,
        wholesaler_categories -> Array<Text>,
        country_codes -> Array<Text>,
        tags -> Array<Text>,
        status -> Text,
        active -> Bool,
        external_id -> Nullable<Text>,
        metadata -> Jsonb,
        website_clicks -> Int8,
        video_clicks -> Int8,
        clicks -> Int8,
        users_count -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        facets -> Array<Text>,
        deleted_external_id -> Nullable<Text>,
    }
}

diesel::table! {
    partner_create_requests (principal, request_id) {
        principal -> Text,
        request_id -> Text,
        fingerprint -> Text,
        partner_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        uuid -> Uuid,
        business_id -> Int8,
        email -> Text,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(partner_click_events -> partners (partner_id));
diesel::joinable!(partner_integrations -> businesses (business_id));
diesel::joinable!(partner_integrations -> partners (partner_id));
diesel::joinable!(partner_preferences -> businesses (business_id));
diesel::joinable!(partner_preferences -> partners (partner_id));
diesel::joinable!(partner_users -> partners (partner_id));
diesel::joinable!(partner_users -> users (user_id));
diesel::joinable!(users -> businesses (business_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    businesses,
    partner_click_events,
    partner_create_requests,
    partner_integrations,
    partner_preferences,
    partner_change_state,
    partner_changes,
    partner_search_state,
    partner_users,
    partners,
    users,
);
