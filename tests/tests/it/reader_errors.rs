//! What `DecryptReader` does when it is read again after it has reported an error. A
//! caller that keeps reading (a retry loop, an adapter that treats errors as transient)
//! must not be handed a clean end of stream, nor plaintext from after the damage: once a
//! part has failed to verify, every later read must fail too.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use twofold::envelope::stream::{DecryptReader, envelope_error};
use twofold::envelope::{Error, ObjectName, SINGLE_PART_NUMBER, SegmentCipher};
use twofold_tests::{
    Custody, random_bytes, seal_object_with_keys, segment_4k, segment_range, settings,
};

const SEGMENT_BYTES: usize = 4096;
const SEGMENTS: usize = 5;
const NAME: ObjectName<'static> = ObjectName {
    bucket: "reader-errors",
    key: "object",
};

/// What each successive `read` returned: bytes, or the envelope error.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the fields are shown through Debug in failure messages"
)]
enum Step {
    Data(usize),
    End,
    Failed(String),
}

/// Reads `stored` with a reader that is called again after each error, up to `max_calls`
/// times; returns the steps and every byte released.
fn read_on_after_errors(
    header: &twofold::envelope::header::Header,
    keys: &twofold::envelope::DataKeys,
    stored: &[u8],
    max_calls: usize,
) -> (Vec<Step>, Vec<u8>) {
    let cipher = SegmentCipher::new(header, keys, SINGLE_PART_NUMBER).unwrap();
    let mut reader = DecryptReader::new(cipher, stored);
    let mut steps = Vec::new();
    let mut released = Vec::new();
    let mut buf = vec![0u8; SEGMENT_BYTES];
    for _ in 0..max_calls {
        match reader.read(&mut buf) {
            Ok(0) => {
                steps.push(Step::End);
                break;
            }
            Ok(n) => {
                released.extend_from_slice(&buf[..n]);
                steps.push(Step::Data(n));
            }
            Err(e) => {
                let shown = envelope_error(&e).map_or_else(|| e.to_string(), Error::to_string);
                steps.push(Step::Failed(shown));
            }
        }
    }
    (steps, released)
}

#[test]
fn reading_on_after_a_rejected_segment_neither_resumes_nor_ends_cleanly() {
    let custody = Custody::new("re-junk");
    let ring = custody.keyring(settings(segment_4k()));
    let plain = random_bytes((SEGMENTS - 1) * SEGMENT_BYTES + 1000);
    let (header, keys, stored) = seal_object_with_keys(&ring, NAME, &plain);
    // A forged segment inserted after segment 0.
    let first = segment_range(segment_4k(), 0, stored.len());
    let mut forged = stored[..first.end].to_vec();
    forged.extend_from_slice(&random_bytes(first.len()));
    forged.extend_from_slice(&stored[first.end..]);

    let (steps, released) = read_on_after_errors(&header, &keys, &forged, 50);
    let first_error = steps
        .iter()
        .position(|s| matches!(s, Step::Failed(_)))
        .expect("the forged segment is reported");
    let after: Vec<&Step> = steps[first_error..].iter().collect();
    assert!(
        after.iter().all(|s| matches!(s, Step::Failed(_))),
        "after the first error the reader went on: {after:?}"
    );
    assert_eq!(
        released.len(),
        SEGMENT_BYTES,
        "released {} bytes, more than the one segment before the forged one",
        released.len()
    );
}

#[test]
fn reading_on_after_a_truncation_error_does_not_report_a_clean_end_of_stream() {
    let custody = Custody::new("re-trunc");
    let ring = custody.keyring(settings(segment_4k()));
    let plain = random_bytes((SEGMENTS - 1) * SEGMENT_BYTES + 1000);
    let (header, keys, stored) = seal_object_with_keys(&ring, NAME, &plain);
    let last = segment_range(segment_4k(), SEGMENTS - 1, stored.len());
    let cut = &stored[..last.start];

    let (steps, released) = read_on_after_errors(&header, &keys, cut, 20);
    let first_error = steps
        .iter()
        .position(|s| matches!(s, Step::Failed(_)))
        .expect("the truncation is reported");
    assert!(
        !steps[first_error..].iter().any(|s| matches!(s, Step::End)),
        "a read after the truncation error reported a clean end of stream: {steps:?}"
    );
    assert_eq!(released.len(), (SEGMENTS - 2) * SEGMENT_BYTES);
}
