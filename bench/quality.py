"""Detection quality on generated data the models did not train on.

For each seed: generate accounts with injected fraud, import, train on the
first months, evaluate on the last month. Prints one row per seed and model
plus the verdict quality of each flag rule, and the mean over seeds.

    uv run python -m bench.quality [--seeds 1 2 3] [--accounts 400] [--months 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import date

from bench.setup import django_with_temp_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument("--fraud-rate", type=float, default=0.01)
    parser.add_argument("--json", help="write all reports here")
    args = parser.parse_args()
    folder = django_with_temp_database("quality")

    from detection.dates import parse_when
    from detection.evaluation import models_evaluate
    from detection.importer import import_transactions_csv
    from detection.models import ModelVersion, Transaction
    from detection.synthetic import generate
    from detection.training import models_train

    start = date(2024, 1, 1)
    split_month = start.month + args.months - 1
    split = parse_when(
        f"{start.year + (split_month - 1) // 12}-{(split_month - 1) % 12 + 1:02d}-01"
    )
    reports = []
    for seed in args.seeds:
        Transaction.objects.all().delete()
        ModelVersion.objects.all().delete()
        out, labels = folder / f"tx-{seed}.csv", folder / f"labels-{seed}.csv"
        generate(
            out=out,
            labels=labels,
            accounts=args.accounts,
            months=args.months,
            seed=seed,
            fraud_rate=args.fraud_rate,
            start=start,
        )
        import_transactions_csv(path=out)
        models_train(until=split)
        report = models_evaluate(labels_path=labels, split_date=split)
        reports.append(report)
        print(f"seed {seed}: {report.rows} transactions evaluated, {report.frauds} fraud")
        for algorithm, quality in report.models.items():
            print(f"  {algorithm:22} ROC-AUC {quality.roc_auc:.3f}  PR-AUC {quality.pr_auc:.3f}")
        for rule, verdict in report.rules.items():
            print(
                f"  flagged ({rule:6}) precision {verdict.precision:.3f}"
                f" recall {verdict.recall:.3f}"
                f" FPR {verdict.false_positive_rate:.4f}  "
                + ", ".join(f"{k} {v:.0%}" for k, v in verdict.recall_by_scenario.items())
            )
    print("mean over seeds")
    for algorithm in reports[0].models:
        roc = statistics.mean(r.models[algorithm].roc_auc for r in reports)
        pr = statistics.mean(r.models[algorithm].pr_auc for r in reports)
        print(f"  {algorithm:22} ROC-AUC {roc:.3f}  PR-AUC {pr:.3f}")
    for rule in reports[0].rules:
        recall = statistics.mean(r.rules[rule].recall for r in reports)
        fpr = statistics.mean(r.rules[rule].false_positive_rate for r in reports)
        precision = statistics.mean(r.rules[rule].precision for r in reports)
        print(f"  flagged ({rule:6}) precision {precision:.3f} recall {recall:.3f} FPR {fpr:.4f}")
        scenarios = sorted({s for r in reports for s in r.rules[rule].recall_by_scenario})
        for scenario in scenarios:
            values = [
                r.rules[rule].recall_by_scenario[scenario]
                for r in reports
                if scenario in r.rules[rule].recall_by_scenario
            ]
            print(f"    recall {scenario:18} {statistics.mean(values):.2f} ({len(values)} seeds)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([r.as_dict() for r in reports], handle, indent=2)


if __name__ == "__main__":
    main()
