//! The fixed word lists the generated rows draw from: categories, country codes, the words of
//! partner names and of user names. None holds a quote (they are inlined into SQL as literals).

/// Categories, most popular first.
pub(super) const CATEGORIES: [&str; 12] = [
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
pub(super) const WHOLESALER_CATEGORIES: [&str; 10] = [
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
pub(super) const COUNTRIES: [&str; 15] = [
    "DE", "GB", "FR", "AT", "NL", "ES", "IT", "CH", "BE", "PL", "SE", "DK", "IE", "PT", "US",
];
pub(super) const NAME_FIRST: [&str; 40] = [
    "Blue", "Green", "Red", "Silver", "Golden", "Rapid", "Smart", "Bright", "Urban", "Nordic",
    "Alpine", "Coastal", "Prime", "Clever", "Swift", "Solid", "Fresh", "Royal", "Happy", "Simple",
    "Modern", "Classic", "Global", "Local", "Central", "United", "First", "Next", "True", "Open",
    "Clear", "Pure", "Bold", "Grand", "Little", "Great", "Wild", "Quiet", "Lucky", "Sunny",
];
/// Second words; [`SEARCH_WORD`](super::SEARCH_WORD) is one of them and no other word of any list contains it.
pub(super) const NAME_SECOND: [&str; 40] = [
    "Harbor", "River", "Mountain", "Forest", "Bridge", "Market", "Garden", "Table", "Kitchen",
    "Oven", "Plate", "Spoon", "Ledger", "Till", "Counter", "Cellar", "Bakery", "Orchard", "Valley",
    "Meadow", "Tower", "Castle", "Lantern", "Anchor", "Compass", "Pepper", "Basil", "Olive",
    "Lemon", "Cedar", "Maple", "Falcon", "Otter", "Badger", "Heron", "Beacon", "Summit", "Canyon",
    "Island", "Prairie",
];
/// Rare second words (one partner in a thousand).
pub(super) const NAME_RARE: [&str; 5] = ["Quokka", "Zephyr", "Marzipan", "Juniper", "Xylophone"];
pub(super) const NAME_THIRD: [&str; 12] = [
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
pub(super) const NAME_CITY: [&str; 16] = [
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
pub(super) const USER_FIRST: [&str; 12] = [
    "Ada", "Bob", "Chloe", "Dan", "Eva", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luis",
];
pub(super) const USER_LAST: [&str; 10] = [
    "Meyer", "Smith", "Dubois", "Rossi", "Garcia", "Novak", "Jansen", "Berg", "Kowalski", "Silva",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SEARCH_WORD;

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
}
