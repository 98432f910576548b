//! Status conditions, one way for every controller: a condition's `lastTransitionTime`
//! changes only when its status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `c`'s transition time given the condition it replaces: `prev`'s while the status holds,
/// `now` otherwise.
pub fn transition_time(c: &Condition, prev: Option<&Condition>, now: &Time) -> Time {
    match prev {
        Some(p) if p.status == c.status => p.last_transition_time.clone(),
        _ => now.clone(),
    }
}

/// Give every condition of `new` its transition time against `old` (matched by type).
pub fn carry_transition_times(new: &mut [Condition], old: &[Condition], now: &Time) {
    for c in new {
        let prev = old.iter().find(|p| p.type_ == c.type_);
        c.last_transition_time = transition_time(c, prev, now);
    }
}

/// Put `c` in `conditions` in place of the condition of its type, if any, keeping that one's
/// transition time while the status holds.
pub fn set(conditions: &mut Vec<Condition>, mut c: Condition) {
    match conditions.iter_mut().find(|o| o.type_ == c.type_) {
        Some(old) => {
            c.last_transition_time = transition_time(&c, Some(old), &c.last_transition_time);
            *old = c;
        }
        None => conditions.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: &str, at: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::from_second(at).unwrap()),
        }
    }

    #[test]
    fn a_transition_time_moves_only_with_the_status() {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let mut new = vec![cond("Ready", "True", 0), cond("Valid", "True", 0)];
        let old = vec![cond("Ready", "True", 5), cond("Valid", "False", 6)];
        carry_transition_times(&mut new, &old, &now);
        assert_eq!(new[0].last_transition_time, old[0].last_transition_time);
        assert_eq!(new[1].last_transition_time, now);

        let mut conds = vec![cond("Ready", "True", 5)];
        set(&mut conds, cond("Ready", "True", 50));
        assert_eq!(
            conds[0].last_transition_time,
            cond("x", "", 5).last_transition_time
        );
        set(&mut conds, cond("Ready", "False", 60));
        assert_eq!(
            conds[0].last_transition_time,
            cond("x", "", 60).last_transition_time
        );
        set(&mut conds, cond("Other", "True", 70));
        assert_eq!(conds.len(), 2);
    }
}
