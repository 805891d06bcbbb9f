//! A list's facets counted in the copy: its matches (as the page was cut from) tallied per value
//! of categories, country codes and status, in memory. Tags are not in the copy; a list asking for
//! them, or one the copy does not answer, is counted by Postgres ([`partner::facets`]).

use std::sync::Arc;

use super::delta::{Key, View};
use super::paging::count_key;
use super::preferences::Preferred;
use crate::model::PartnerStatus;
use crate::model::partner::{self, FacetField, Facets, ListQuery};

impl View {
    /// `q`'s facets over its matches in this copy, the business's `preferred` set filtering them
    /// where `q` filters on the preference; `None` when the copy cannot count them (tags, a
    /// search it does not answer, a preference filter without the set).
    pub fn facets(&self, q: &ListQuery, preferred: Option<&Preferred>) -> Option<Facets> {
        if q.facets.contains(&FacetField::Tags) || (q.preferred.is_some() && preferred.is_none()) {
            return None;
        }
        if q.search.is_none() && q.preferred.is_none() {
            // Counted once per version of the copy and filter: every page of the list asks alike.
            let matches = self.matches(q)?;
            let key = (count_key(q), q.facets.clone());
            let counted =
                (self.matches.facets).get_with(key, || Arc::new(self.tally(q, matches.iter())));
            return Some(counted.as_ref().clone());
        }
        let keys: Vec<_> = match &q.search {
            Some(_) => (self.candidates(q)?.into_iter())
                .filter_map(|id| self.key_of(id))
                .collect(),
            None => self.matches(q)?.iter().collect(),
        };
        let kept = |key: &Key| {
            let prefers = |id| preferred.is_some_and(|p| p.contains(id));
            q.preferred
                .is_none_or(|wanted| prefers(self.id(*key)) == wanted)
        };
        Some(self.tally(q, keys.into_iter().filter(kept)))
    }

    /// `q`'s facet fields counted over the partners at `keys`.
    fn tally(&self, q: &ListQuery, keys: impl Iterator<Item = Key>) -> Facets {
        let words = self.spellings();
        let mut categories = vec![0i64; words.len()];
        let mut countries = vec![0i64; words.len()];
        let mut statuses = [0i64; 3];
        for key in keys {
            let ([c, _, cc], status) = self.values(key);
            c.iter().for_each(|&v| categories[v as usize] += 1);
            cc.iter().for_each(|&v| countries[v as usize] += 1);
            statuses[status_index(status)] += 1;
        }
        let spelled = |counts: &[i64]| {
            let values = (counts.iter().enumerate())
                .filter(|(_, n)| **n > 0)
                .map(|(v, n)| (words[v].to_owned(), *n))
                .collect();
            partner::facet_values(values)
        };
        let by_status = || {
            let values = (PartnerStatus::ALL.iter())
                .map(|s| (s.as_str().to_owned(), statuses[status_index(*s)]))
                .collect();
            partner::facet_values(values)
        };
        let counted = q.facets.iter().map(|&field| match field {
            FacetField::Categories => (field, spelled(&categories)),
            FacetField::CountryCodes => (field, spelled(&countries)),
            FacetField::Status => (field, by_status()),
            FacetField::Tags => (field, Vec::new()), // not reached: checked above
        });
        counted.collect()
    }
}

fn status_index(status: PartnerStatus) -> usize {
    match status {
        PartnerStatus::Available => 0,
        PartnerStatus::ComingSoon => 1,
        PartnerStatus::Unavailable => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::partner::{ListKind, Scope};
    use crate::serving::lists::copy::fixtures::{query, snapshot};

    fn counts(values: &[(&str, i64)]) -> Vec<(String, i64)> {
        values.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect()
    }

    #[test]
    fn counts_every_match_per_value_most_first() {
        let view = snapshot();
        let mut q = ListQuery::new(ListKind::All, Scope::default(), 1, 1);
        q.facets = vec![
            FacetField::Categories,
            FacetField::CountryCodes,
            FacetField::Status,
        ];
        let facets = view.facets(&q, None).expect("counted in the copy");
        assert_eq!(
            facets,
            vec![
                (
                    FacetField::Categories,
                    counts(&[
                        ("pos", 4),
                        ("accounting", 1),
                        ("payments", 1),
                        ("wholesaler", 1)
                    ])
                ),
                (
                    FacetField::CountryCodes,
                    counts(&[("DE", 4), ("AT", 1), ("FR", 1)])
                ),
                (
                    FacetField::Status,
                    counts(&[("available", 4), ("coming_soon", 1), ("unavailable", 1)])
                ),
            ]
        );
        // A search counts its matches only; tags are not in the copy.
        let mut searched = query(ListKind::All, "harb");
        searched.facets = vec![FacetField::Status];
        let facets = view
            .facets(&searched, None)
            .expect("a search the copy answers");
        assert_eq!(
            facets[0].1,
            counts(&[("available", 3), ("coming_soon", 1), ("unavailable", 1)])
        );
        searched.facets.push(FacetField::Tags);
        assert!(view.facets(&searched, None).is_none());
    }
}
