"""`hands app`: the browser app (Gradio) - Reconstruct, Generate and Avatar tabs - on this machine.

    hands app                                   # http://127.0.0.1:7860, loopback only
    hands app --port 8080 --out outputs/app
    hands app --host 0.0.0.0 --auth user:secret # on a shared server: listen on the network, ask for a login

Reconstruct runs the fit front end (no trained weights) or ACR (--acr_checkpoint); Generate runs AttentionHand
(--attentionhand); Avatar runs OHTA (--ohta_prior). A tab whose weights are missing says which file goes where.
Every run is a folder <out>/<tab>/<time>_<name>/ holding what the matching `hands` verb writes. Needs the `app`
extra (pip install 'hands[app]').
"""

from __future__ import annotations

import argparse
import logging
import os

from hands.app.config import AppConfig
from hands.cli.options import add_dataclass_arguments, dataclass_from_arguments
from hands.config import save_config


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """`user:password` -> (user, password); None for none."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth should be user:password")
    return user, password


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hands app", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser.add_argument_group("app (AppConfig)"), AppConfig, skip=("avatar_overrides",))
    parser.add_argument("--avatar_setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a `hands avatar create` setting for every avatar (repeat), e.g. creation.finetune_steps=50")
    parser.add_argument("--auth", default=os.environ.get("HANDS_APP_AUTH"),
                        help="user:password asked by the page (default $HANDS_APP_AUTH; none on loopback)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = dataclass_from_arguments(AppConfig, args)
    config.avatar_overrides = list(args.avatar_setting)
    auth = parse_auth(args.auth)
    if config.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        logging.getLogger("hands.app").warning("listening on %s without --auth: anyone on the network can use the app",
                                               config.host)
    try:
        from hands.app.ui import launch
    except ImportError as error:
        raise SystemExit(f"hands app: {error.name or error} is not installed; pip install 'hands[app]' (gradio)") from None
    save_config(config, f"{config.out}/app.yaml", overwrite=True)
    print(f"hands app: http://{config.host}:{config.port}  (runs in {config.out}/)")
    launch(config, auth)
