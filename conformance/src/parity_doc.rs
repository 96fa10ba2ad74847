//! The rows of `docs/parity.md`, so a case's expected difference can be checked against the
//! document instead of trusted.

use std::path::Path;

/// The heading of the section that holds this harness's own last table, whose rows are
/// cases, not documented behaviours.
const RUN_SECTION: &str = "## Conformance run";

/// The first cell of every table row in the document before the conformance run section,
/// normalised (see [`normalise`]).
pub fn row_names(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .take_while(|line| !line.starts_with(RUN_SECTION))
        .filter_map(|line| line.trim().strip_prefix('|'))
        .filter_map(|rest| rest.split('|').next())
        .map(normalise)
        .filter(|cell| !cell.is_empty() && !cell.chars().all(|c| c == '-' || c == ':'))
        .collect())
}

/// Case-insensitive, without code quotes or surrounding space: how a case names a row.
pub fn normalise(cell: &str) -> String {
    cell.replace('`', "").trim().to_lowercase()
}

/// Whether `tag` names a row: the row's whole first cell, or its first words (a long cell
/// such as "host function argument errors (pointer out of bounds, …)" is named by
/// "host function argument errors").
pub fn names_a_row(rows: &[String], tag: &str) -> bool {
    let tag = normalise(tag);
    !tag.is_empty()
        && rows.iter().any(|row| {
            row == &tag
                || row
                    .strip_prefix(&tag)
                    .is_some_and(|rest| rest.starts_with([' ', '(']))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_cells_of_rows_are_names() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("parity.md");
        std::fs::write(
            &doc,
            "# t\n\n| value | Polkadot |\n|---|---|\n| `ext_foo` stub | trap |\n| Trap | Invalid |\ntext | not a row\n\n## Conformance run\n\n| adder | agree |\n",
        )
        .unwrap();
        let rows = row_names(&doc).unwrap();
        assert_eq!(rows, ["value", "ext_foo stub", "trap"]);
        assert!(names_a_row(&rows, "`ext_foo` stub"));
        assert!(names_a_row(&rows, "ext_foo"));
        assert!(!names_a_row(&rows, "ext_fo"));
        assert!(!names_a_row(&rows, "tra"));
        assert!(
            !names_a_row(&rows, "adder"),
            "the run's own table documents nothing"
        );
    }
}
