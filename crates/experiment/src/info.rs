//! Info scenes: a page of text and a button, such as consent or instructions.
//!
//! An optional checkbox must be ticked before the button works, which is how a
//! consent form records agreement: the server refuses an `advance` without
//! `checked: true`, so the browser cannot skip it.

use tandem_wire::InfoView;

use crate::error::{Problems, Reported};
use crate::markdown;
use crate::reader::Table;
use crate::scene::Head;

/// Fields of an info scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &["markdown", "checkbox", "button"];

/// A page to read.
#[derive(Clone, Debug, PartialEq)]
pub struct InfoScene {
    pub id: String,
    pub title: String,
    /// The text as written in the file.
    pub markdown: String,
    /// `markdown` rendered once, at load.
    pub html: String,
    /// The label of a box that must be ticked to go on, if any.
    pub checkbox: Option<String>,
    /// The label of the button that goes on (default "Continue").
    pub button: String,
}

impl InfoScene {
    /// Whether an `advance` with this `checked` value may leave the scene.
    pub fn may_advance(&self, checked: bool) -> bool {
        self.checkbox.is_none() || checked
    }

    /// The scene as the participant page receives it.
    pub fn view(&self) -> InfoView {
        InfoView {
            id: self.id.clone(),
            title: self.title.clone(),
            html: self.html.clone(),
            checkbox: self.checkbox.clone(),
            button: self.button.clone(),
        }
    }
}

pub(crate) fn read(
    problems: &mut Problems,
    table: &Table,
    head: Result<Head, Reported>,
) -> Result<InfoScene, Reported> {
    let markdown = table.req_str(problems, "markdown");
    let checkbox = table.opt_str(problems, "checkbox");
    let button = table.opt_str(problems, "button");
    let head = head?;
    let markdown = markdown?;
    Ok(InfoScene {
        id: head.id,
        title: head.title,
        html: markdown::to_html(&markdown),
        markdown,
        checkbox: checkbox?,
        button: button?.unwrap_or_else(|| "Continue".to_string()),
    })
}
