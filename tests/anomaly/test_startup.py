"""Starting a process must not pay for the machine-learning stack.

scikit-learn takes seconds to import; a management command, a test run or a
gunicorn worker importing the URLconf, admin and pages should not, so the
code imports it where it trains or scores. Checked in a fresh interpreter,
since this one has long imported everything.
"""

from __future__ import annotations

from tests.anomaly.fresh_interpreter import run_fresh


def test_it_starts_django_without_importing_scikit_learn():
    script = (
        "import sys, django; django.setup();"
        "import anomaly.urls, detection.admin, detection.scoring, detection.training;"
        "print(sorted(m for m in sys.modules if m == 'sklearn' or m.startswith('sklearn.')))"
    )
    output = run_fresh(script, DJANGO_SETTINGS_MODULE="anomaly.settings_test")
    assert output.strip() == "[]"
