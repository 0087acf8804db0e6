//! A browser form's body and policy: `twofold::s3::post_form::parse` and `parse_head` on
//! the input as a body (boundary `b`), and `twofold::s3::post_policy::decode` and `check`
//! on the input as a policy document.
//!
//! Checks: a parsed form's file is a slice of the body and its fields keep the limits;
//! `parse_head` of the same body gives the same fields and file name, and succeeds on every
//! prefix that reaches the file's bytes; a decoded policy keeps its limits and can be
//! checked against the parsed fields without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twofold::s3::post_form::{self, FORM_FIELD_BYTES_MAX, FORM_FIELDS_MAX};
use twofold::s3::post_policy::{self, POLICY_CONDITIONS_MAX, Submitted};

fuzz_target!(|data: &[u8]| {
    let mut fields = Vec::new();
    if let Ok(form) = post_form::parse(data, "b") {
        let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
        let file = form.file.data.as_ptr() as usize;
        assert!(file >= start && file + form.file.data.len() <= end);
        assert!(form.fields.len() <= FORM_FIELDS_MAX);
        assert!(form.fields.iter().all(|(n, v)| {
            v.len() <= FORM_FIELD_BYTES_MAX && *n == n.to_ascii_lowercase()
        }));
        let file_at = file - start;
        let head = post_form::parse_head(&data[..file_at], "b");
        match head {
            Ok(head) => {
                assert_eq!(head.fields, form.fields);
                assert_eq!(head.filename, form.file.filename);
            }
            Err(e) => panic!("the head of a parsed form was refused: {e:?}"),
        }
        fields = form.fields;
    }
    let _ = post_form::parse_head(data, "b");
    let json = String::from_utf8_lossy(data);
    if let Ok(policy) = post_policy::decode(&post_policy::encode(&json)) {
        assert!(policy.conditions.len() <= POLICY_CONDITIONS_MAX);
        for file_len in [None, Some(0), Some(u64::MAX)] {
            let _ = post_policy::check(
                &policy,
                &Submitted {
                    fields: &fields,
                    bucket: "b",
                    file_len,
                    now: 1_700_000_000,
                },
            );
        }
    }
});
