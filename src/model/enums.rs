//! The domain's closed sets of values, stored as text: partner status, integration status, click
//! event type and API key kind. Each converts to and from its database spelling in one place
//! (Diesel `ToSql`/`FromSql` on `text`); the gRPC layer converts them to and from protobuf enums.

use std::fmt;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

/// Declares a text-stored enum: the variants with their database spelling, `as_str`, `parse`,
/// `ALL`, `Display` and Diesel's conversions.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$doc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The database (and REST) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value spelled `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), &mut out.reborrow())
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                Self::parse(&text)
                    .ok_or_else(|| format!("unknown {} {text:?}", stringify!($name)).into())
            }
        }
    };
}

pub(crate) use text_enum;

text_enum! {
    /// Whether a partner can be used.
    PartnerStatus {
        /// `available`
        Available = "available",
        /// `coming_soon`
        ComingSoon = "coming_soon",
        /// `unavailable`
        Unavailable = "unavailable",
    }
}

text_enum! {
    /// State of a business's integration with a partner.
    IntegrationStatus {
        /// `pending`
        Pending = "pending",
        /// `active`
        Active = "active",
        /// `inactive`
        Inactive = "inactive",
        /// `failed`
        Failed = "failed",
    }
}

text_enum! {
    /// What a click went to.
    EventType {
        /// `website`
        Website = "website",
        /// `video`
        Video = "video",
    }
}

text_enum! {
    /// Who an API key authenticates.
    KeyKind {
        /// A trusted internal service.
        Service = "service",
        /// A platform user.
        User = "user",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_parses_back_from_its_spelling() {
        for s in PartnerStatus::ALL {
            assert_eq!(PartnerStatus::parse(s.as_str()), Some(*s));
        }
        for s in IntegrationStatus::ALL {
            assert_eq!(IntegrationStatus::parse(&s.to_string()), Some(*s));
        }
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(*e));
        }
        for k in KeyKind::ALL {
            assert_eq!(KeyKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(PartnerStatus::parse("Available"), None);
        assert_eq!(PartnerStatus::ComingSoon.as_str(), "coming_soon");
    }
}
