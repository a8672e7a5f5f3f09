//! Fails when any file under `fixtures/` holds a key-shaped string.

use imagegate_testkit::{fixtures_root, secrets};

#[test]
fn fixtures_hold_no_key_shaped_strings() {
    let root = fixtures_root();
    let findings = secrets::scan_dir(&root).expect("fixtures/ can be scanned");
    assert!(
        findings.is_empty(),
        "key-shaped strings under {}: {findings:#?}",
        root.display()
    );
}
