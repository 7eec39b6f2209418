//! Markdown to HTML, done once when the experiment loads.
//!
//! Researchers write consent forms, instructions and debriefs in Markdown; the
//! participant page shows HTML. Rendering at load time means a participant's page
//! never waits on it and a file that loads always renders. Raw HTML in the Markdown
//! is passed through: the file is written by the researcher who runs the server, and
//! consent forms sometimes need it (an embedded logo, a styled box).

use pulldown_cmark::{Options, Parser, html};

/// Renders CommonMark with tables, strikethrough and task lists.
///
/// Links to other pages open in a new tab, so that a participant who follows a link
/// in a consent form does not leave the study page.
pub(crate) fn to_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options));
    open_links_in_new_tab(&out)
}

fn open_links_in_new_tab(html: &str) -> String {
    const OPEN: &str = "<a href=\"";
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with('#') {
            // An anchor within the page stays in the page.
            out.push_str(OPEN);
        } else {
            out.push_str("<a target=\"_blank\" rel=\"noopener noreferrer\" href=\"");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markdown renders, and outside links (not in-page anchors) open in a new tab.
    #[test]
    fn renders_and_opens_links_in_new_tab() {
        let html = to_html("# Hi\n\nSee [the form](https://example.org) or [below](#x).");
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(
            html.contains(
                "<a target=\"_blank\" rel=\"noopener noreferrer\" href=\"https://example.org\">"
            ),
            "{html}"
        );
        assert!(html.contains("<a href=\"#x\">below</a>"), "{html}");
    }
}
