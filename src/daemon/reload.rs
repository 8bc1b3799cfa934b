//! Reload (SIGHUP): the configuration read again. The log level changes at once. With tenants, a
//! tenant added is served, one removed is stopped (its files stay where they are), and one whose
//! entry changed is restarted (a new weight alone counts from the next turn, with no restart);
//! the other tenants run on untouched. Every other change needs a restart, and the log names the
//! keys. A configuration that fails to load or check changes nothing.

use super::served::Served;
use crate::config::{Config, Sources, TenantConfig};
use crate::logging::Logging;
use tracing::{error, info, warn};

/// What a reload does to the tenants, in this order.
#[derive(Debug, PartialEq)]
enum Change {
    /// Stop serving it (removed, or its base moved elsewhere: then added again after).
    Remove(String),
    /// Serve it (new, or changed and stopped just before).
    Add(TenantConfig),
    Weight(String, u32),
}

pub(super) async fn reload(sources: &Sources, running: &Config, logging: &Logging, served: &mut Served) {
    let new = match Config::load(sources) {
        Ok(new) => new,
        Err(e) => return error!("configuration reload failed, keeping the running settings: {e}"),
    };
    logging.set_level(new.log_level);
    // Tenants change live while there are tenants; going from none to some (or back) changes what
    // `/` serves and the metrics' labels, so it waits for a restart like the other keys. The
    // "reloaded" line comes once the tenants are changed.
    let live = !running.tenants.is_empty() && !new.tenants.is_empty();
    if live {
        let serving: Vec<TenantConfig> = served.catalogs().iter().filter_map(|c| c.tenant.clone()).collect();
        let changes = changes(&serving, &new.tenants);
        // Every tenant that goes stops at once, in parallel: a reload waits at most one
        // SHUTDOWN_TIMEOUT for them.
        let removed: Vec<String> =
            changes.iter().filter_map(|c| if let Change::Remove(name) = c { Some(name.clone()) } else { None }).collect();
        served.remove(&removed).await;
        for change in changes {
            match change {
                Change::Remove(_) => {}
                Change::Add(tenant) => {
                    if let Err(e) = served.add(&tenant).await {
                        let name = &tenant.name;
                        error!(tenant = %name, "cannot serve tenant {name}: {e}; fix it and reload again");
                    }
                }
                Change::Weight(name, weight) => {
                    served.set_weight(&name, weight);
                    info!(tenant = %name, weight, "tenant {name}'s weight changed");
                }
            }
        }
    }
    let changed = changed_keys(running, &new, live);
    if changed.is_empty() {
        info!("configuration reloaded");
    } else {
        warn!(keys = %changed.join(", "), "configuration reloaded; these changes take effect after a restart");
    }
    served.sweep_lingering();
    served.rescan();
}

/// The changes that take the tenants `serving` to `wanted`: removals first (a base or token
/// handed from one tenant to another is free before it is taken), then additions.
fn changes(serving: &[TenantConfig], wanted: &[TenantConfig]) -> Vec<Change> {
    let find = |list: &[TenantConfig], name: &str| list.iter().find(|t| t.name == name).cloned();
    let mut removed = Vec::new();
    let mut added = Vec::new();
    let mut weights = Vec::new();
    for old in serving {
        match find(wanted, &old.name) {
            None => removed.push(Change::Remove(old.name.clone())),
            Some(new) if new == *old => {}
            Some(new) if TenantConfig { weight: old.weight, ..new.clone() } == *old => {
                weights.push(Change::Weight(new.name.clone(), new.weight))
            }
            Some(new) => {
                removed.push(Change::Remove(old.name.clone()));
                added.push(Change::Add(new));
            }
        }
    }
    added.extend(wanted.iter().filter(|t| find(serving, &t.name).is_none()).cloned().map(Change::Add));
    removed.into_iter().chain(added).chain(weights).collect()
}

/// Top-level keys (other than the log level, and the tenants when they change `live`) whose
/// values differ.
fn changed_keys(old: &Config, new: &Config, live: bool) -> Vec<String> {
    let as_table = |c: &Config| toml::Value::try_from(c).ok().and_then(|v| v.as_table().cloned()).unwrap_or_default();
    let (old, new) = (as_table(old), as_table(new));
    let mut keys: Vec<String> = old.keys().chain(new.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| key != "log_level" && !(live && key == "tenants") && old.get(key) != new.get(key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantConfig {
        toml::from_str(&format!("name = \"{name}\"")).unwrap()
    }

    #[test]
    fn a_reload_names_the_keys_that_need_a_restart_but_not_the_log_level() {
        let old = Config::default();
        let new = Config {
            log_level: crate::config::LogLevel::Debug,
            workers: 7,
            delete_orphans: crate::config::Flag(true),
            ..Config::default()
        };
        assert_eq!(changed_keys(&old, &new, false), ["delete_orphans", "workers"]);
        assert!(changed_keys(&old, &old.clone(), false).is_empty());
    }

    #[test]
    fn tenants_need_a_restart_only_to_appear_or_disappear_altogether() {
        let none = Config::default();
        let some = Config { tenants: vec![tenant("a")], ..Config::default() };
        let more = Config { tenants: vec![tenant("a"), tenant("b")], ..Config::default() };
        assert_eq!(changed_keys(&none, &some, false), ["tenants"]);
        assert_eq!(changed_keys(&some, &none, false), ["tenants"]);
        assert!(changed_keys(&some, &more, true).is_empty());
    }

    #[test]
    fn a_reload_removes_before_it_adds_restarts_a_changed_tenant_and_only_reweighs_a_new_weight() {
        let (a, b, c) = (tenant("a"), tenant("b"), tenant("c"));
        let b_heavier = TenantConfig { weight: 3, ..b.clone() };
        let a_quota = TenantConfig { max_photos_per_day: Some(10), ..a.clone() };
        let got = changes(&[a.clone(), b.clone(), c.clone()], &[a_quota.clone(), b_heavier, tenant("d")]);
        assert_eq!(
            got,
            [
                Change::Remove("a".into()),
                Change::Remove("c".into()),
                Change::Add(a_quota),
                Change::Add(tenant("d")),
                Change::Weight("b".into(), 3),
            ]
        );
        assert!(changes(&[a.clone(), b.clone()], &[b, a]).is_empty(), "order alone changes nothing");
    }
}
