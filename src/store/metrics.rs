//! The reads behind `syncscope serve`'s Gerrit metrics: every ref state as interned ids (no
//! text joined or sorted per row: 50,000 refs stay within a scrape's budget), and the few
//! texts a page names resolved after.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::OptionalExtension;

use super::query::Reader;
use crate::model::gerrit::{Direction, RefState};

/// The interned ids of one ref state: (instance, project, remote, ref); instance 0 is the
/// node without an `instanceId`.
pub type RefIds = [i64; 4];

impl Reader {
    /// Calls `f` with every ref state: its ids, and a [`RefState`] whose texts are empty
    /// except `status` and `last_error` (the predicates `status` applies, `reported`,
    /// `deletion_not_replicated`, `stuck`, read what they need). The state is reused between
    /// calls.
    pub fn for_each_ref_state_ids(&self, mut f: impl FnMut(RefIds, &RefState)) -> Result<()> {
        let mut st = self.connection().prepare_cached(
            "SELECT instance, project, remote, ref, direction, status, when_s, retrying, attempts,
                    last_success, last_failure, scheduled_since, deleted_at
             FROM ref_state",
        )?;
        let mut s = RefState {
            instance: None,
            deleted: None,
            project: String::new(),
            remote: String::new(),
            ref_name: String::new(),
            direction: Direction::Push,
            status: String::new(),
            when: 0,
            retrying: false,
            attempts: 0,
            last_success: None,
            last_failure: None,
            last_error: None,
            scheduled_since: None,
        };
        let mut rows = st.query([])?;
        while let Some(r) = rows.next().wrap_err("cannot read the replication state")? {
            let ids = [r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?];
            s.direction = match r.get_ref(4)?.as_str()? {
                "PULL" => Direction::Pull,
                _ => Direction::Push,
            };
            s.status.clear();
            s.status.push_str(r.get_ref(5)?.as_str()?);
            s.when = r.get(6)?;
            s.retrying = r.get(7)?;
            s.attempts = r.get(8)?;
            s.last_success = r.get(9)?;
            s.last_failure = r.get(10)?;
            s.scheduled_since = r.get(11)?;
            s.deleted = r.get(12)?;
            f(ids, &s);
        }
        Ok(())
    }

    /// The text of an interned id (None for 0, the absent value, or an unknown id).
    pub fn interned_text(&self, id: i64) -> Result<Option<String>> {
        if id == 0 {
            return Ok(None);
        }
        self.connection()
            .prepare_cached("SELECT text FROM strings WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()
            .wrap_err("cannot read an interned name")
    }
}
