//! The `key value` lines of cgroup files (memory.stat, cpu.stat,
//! cpuacct.stat, memory.events, memory.oom_control).

use std::collections::BTreeMap;

/// Parses `key value` lines; a line without a number is left out.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_numbers_only() {
        let m = parse_flat_keyed("oom_kill_disable 0\nunder_oom 1\nbroken\nname x\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["under_oom"], 1);
    }
}
