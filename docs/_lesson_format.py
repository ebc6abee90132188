"""How the site reads a lesson: jupytext's percent format, without the linter's ``# noqa`` remarks.

The lessons import after ``L = Lesson(...)`` has put the project on ``sys.path``; pyproject.toml tells
the linter so, and the lessons carry no ``# noqa`` remarks.  Should one be added, it stays out of the
rendered page, where it is noise to a reader (the download links, ``docs/conf.py``, give the file as is).
"""
import re

import jupytext

#: A remark ending the line goes with the spaces before it; one followed by more comment leaves that comment.
NOQA_END = re.compile(r"[ \t]*# noqa(?::[ A-Z0-9,]+?)?[ \t]*$", re.M)
NOQA_MID = re.compile(r"# noqa(?::[ A-Z0-9,]+?)?[ \t]+(?=\S)")


def reads(text: str, fmt: str = "py:percent"):
    """The notebook of a lesson's text, its code cells without ``# noqa`` comments."""
    nb = jupytext.reads(text, fmt=fmt)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = NOQA_MID.sub("# ", NOQA_END.sub("", cell.source))
    return nb
