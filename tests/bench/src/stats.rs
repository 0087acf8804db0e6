//! Latency percentiles over the samples of one workload.

use std::time::Duration;

/// The `p`-th percentile (0..=100) of `samples` by nearest rank, in milliseconds; `None`
/// when there are no samples. Sorts `samples`.
pub fn percentile_ms(samples: &mut [Duration], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    let i = rank.clamp(1, samples.len()) - 1;
    Some(samples[i].as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut s: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut s, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&mut s, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&mut s, 100.0), Some(100.0));
        assert_eq!(percentile_ms(&mut s, 0.0), Some(1.0));
        assert_eq!(percentile_ms(&mut [], 50.0), None);
        let mut one = [Duration::from_micros(1500)];
        assert_eq!(percentile_ms(&mut one, 99.0), Some(1.5));
    }
}
