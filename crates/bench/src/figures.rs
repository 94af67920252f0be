//! Formatting of the printed figures: rates, durations, latency percentiles.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A latency histogram in microseconds, from 1 µs to one hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

/// Records `d` into a histogram made by [`latency_histogram`], saturating at its top.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    h.saturating_record(us);
}

/// `p50 … max` of a histogram of microseconds, one line.
pub fn percentiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    let q = |q: f64| duration(Duration::from_micros(h.value_at_quantile(q)));
    format!(
        "p50 {}  p90 {}  p99 {}  max {}",
        q(0.50),
        q(0.90),
        q(0.99),
        duration(Duration::from_micros(h.max()))
    )
}

/// A duration with a unit that keeps it readable.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.001 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// `count` per second over `d`.
pub fn rate(count: usize, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

/// A rate with thousands grouped.
pub fn per_second(r: f64) -> String {
    let whole = r.round() as u64;
    let digits = whole.to_string();
    let head = digits.len() % 3;
    let mut groups: Vec<&str> = Vec::new();
    if head > 0 {
        groups.push(&digits[..head]);
    }
    groups.extend(
        digits.as_bytes()[head..]
            .chunks(3)
            .filter_map(|c| std::str::from_utf8(c).ok()),
    );
    groups.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_group_thousands() {
        assert_eq!(per_second(1234567.4), "1,234,567");
        assert_eq!(per_second(999.0), "999");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration(Duration::from_micros(250)), "250 µs");
        assert_eq!(duration(Duration::from_millis(12)), "12.0 ms");
        assert_eq!(duration(Duration::from_millis(2500)), "2.50 s");
    }
}
