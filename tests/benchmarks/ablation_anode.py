"""ANODE's data flow: test AUC versus its training length, on one window of a dataset.

Not a unit test. The background flow is trained once with the chosen profile; the data flow is then
retrained on the SR data for each number of epochs and the ANODE score's AUC on the test set is
printed with the data flow's best validation loss and its training time::

    .venv/bin/python tests/benchmarks/ablation_anode.py --dataset lhco-100k --epochs 10,40,150

Prints one JSON line per epoch count (and the ``matched`` count that ``data_flow_steps =
"background"`` would pick for this window).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="lhco-100k")
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--n-sig", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--epochs", default="10,40,150", help="comma-separated epochs of the data flow")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.methods.cathode import Anode, matched_epochs
    from adbench.methods.presets import load_preset
    from adbench.metrics import roc_auc
    from adbench.preprocessing import LogitScaler

    torch.set_num_threads(args.threads)
    (window,) = make_windows(parse_windows(args.sr, None))
    split = load_dataset(args.dataset).split(args.n_sig, args.seed, [window])
    model = Anode(seed=args.seed, settings=load_preset("anode", args.profile).params)
    sidebands = split.data.select(window.in_sidebands(split.data.m))
    sr = split.data.select(window.in_sr(split.data.m))
    scaler = LogitScaler().fit(split.data.x)
    model.background_flow_ = model._new_flow(args.seed).fit(sidebands.x, sidebands.m, scaler)
    test = split.test_in(window)
    train = model.config.train
    print(json.dumps({"dataset": args.dataset, "window": str(window), "n_sig": args.n_sig, "sideband_events":
                      len(sidebands), "sr_events": len(sr), "matched": matched_epochs(train, len(sidebands), len(sr))}))
    for epochs in (int(e) for e in args.epochs.split(",")):
        started = time.perf_counter()
        model.data_flow_ = model._new_flow(args.seed + 7919, replace(train, epochs=epochs)).fit(sr.x, sr.m, scaler)
        seconds = time.perf_counter() - started
        auc = roc_auc(test.label, model.score(test, window))
        print(json.dumps({"data_flow_epochs": epochs, "test_auc": round(auc, 4),
                          "best_val_loss": round(model.data_flow_.info()["best_val_loss"], 4),
                          "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main(sys.argv[1:])
