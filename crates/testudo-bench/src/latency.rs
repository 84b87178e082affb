//! Latency samples and their summary: every measured request's latency is kept (a run of a
//! few hundred thousand requests costs a few MiB), sorted once, and read by nearest rank.
//!
//! **Invariants:** a percentile is always one of the recorded samples (nearest rank, never
//! interpolated), so p50 ≤ p99 ≤ max holds by construction; an empty set of samples
//! summarises to zeros rather than failing.

use std::time::Duration;

/// The latencies recorded by one worker, or merged from several.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    nanos: Vec<u64>,
}

impl Samples {
    pub fn with_capacity(capacity: usize) -> Samples {
        Samples {
            nanos: Vec::with_capacity(capacity),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    pub fn summary(mut self) -> Summary {
        self.nanos.sort_unstable();
        let sorted = &self.nanos;
        let total: u128 = sorted.iter().map(|&n| u128::from(n)).sum();
        let mean = match u128::try_from(sorted.len()) {
            Ok(count) if count > 0 => u64::try_from(total / count).unwrap_or(u64::MAX),
            _ => 0,
        };
        Summary {
            count: sorted.len() as u64,
            p50: Duration::from_nanos(nearest_rank(sorted, 5_000)),
            p99: Duration::from_nanos(nearest_rank(sorted, 9_900)),
            max: Duration::from_nanos(sorted.last().copied().unwrap_or(0)),
            mean: Duration::from_nanos(mean),
        }
    }
}

/// What a run's latencies come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// The sample at `basis_points` / 10 000 by the nearest-rank method: the smallest sample
/// such that at least that share of samples is ≤ it.
fn nearest_rank(sorted: &[u64], basis_points: u64) -> u64 {
    let n = sorted.len() as u64;
    if n == 0 {
        return 0;
    }
    let rank = (basis_points * n).div_ceil(10_000).clamp(1, n);
    let index = usize::try_from(rank - 1).unwrap_or(usize::MAX);
    sorted.get(index).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: &[u64]) -> Samples {
        let mut samples = Samples::default();
        for &v in values {
            samples.record(Duration::from_micros(v));
        }
        samples
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_are_the_nearest_ranks() {
        let summary = micros(&(1..=100).rev().collect::<Vec<_>>()).summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_micros(50));
        assert_eq!(summary.p99, Duration::from_micros(99));
        assert_eq!(summary.max, Duration::from_micros(100));
        assert_eq!(summary.mean, Duration::from_nanos(50_500));
    }

    #[test]
    fn a_single_slow_request_in_a_hundred_does_not_move_p99_but_shows_in_max() {
        let mut values = vec![10; 99];
        values.push(5_000);
        let summary = micros(&values).summary();
        assert_eq!(summary.p99, Duration::from_micros(10));
        assert_eq!(summary.max, Duration::from_micros(5_000));
    }

    #[test]
    fn two_slow_requests_in_a_hundred_reach_p99() {
        let mut values = vec![10; 98];
        values.extend([5_000, 6_000]);
        assert_eq!(micros(&values).summary().p99, Duration::from_micros(5_000));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let summary = micros(&[42]).summary();
        assert_eq!(summary.p50, Duration::from_micros(42));
        assert_eq!(summary.p99, Duration::from_micros(42));
        assert_eq!(summary.max, Duration::from_micros(42));
    }

    #[test]
    fn no_samples_summarise_to_zero() {
        let summary = Samples::default().summary();
        assert_eq!(summary.count, 0);
        assert_eq!(summary.p99, Duration::ZERO);
        assert_eq!(summary.mean, Duration::ZERO);
    }

    #[test]
    fn merged_samples_are_summarised_together() {
        let mut a = micros(&[1, 2, 3]);
        a.merge(micros(&[4, 5]));
        assert_eq!(a.len(), 5);
        let summary = a.summary();
        assert_eq!(summary.p50, Duration::from_micros(3));
        assert_eq!(summary.max, Duration::from_micros(5));
    }
}
