//! The README's option table is the one the settings table renders: a new
//! or changed option shows up there, or this fails with the table to paste.

#[test]
fn the_readme_lists_every_option_as_the_settings_table_says() {
    let readme =
        std::fs::read_to_string(conclave_tests::workspace_root().join("README.md")).unwrap();
    let start = "<!-- settings: the table of crates/conclave-core/src/list/settings.rs; a test checks it -->\n";
    let from = readme
        .find(start)
        .expect("the settings markers in README.md")
        + start.len();
    let to = readme[from..]
        .find("<!-- /settings -->")
        .expect("the end marker")
        + from;
    let expected = conclave_core::list::settings::markdown_table();
    assert!(
        readme[from..to] == expected,
        "README.md's option table differs from the settings table; put this between the markers:\n{expected}"
    );
}
