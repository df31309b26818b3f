"""`uniremoval train ablation` with an untaught kind (clean photos): every row trains, the table
has the clean column, the means cover the same degraded kinds in every row, and the JSON is
strict (the input's PSNR on clean photos is infinite: the input is the target)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_stage_transfer import TINY, _clean_folder, random_nafnet  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from uniremoval.modelfile import save_model  # noqa: E402


def test_ablation_with_an_untaught_clean_kind(tmp_path: Path) -> None:
    from uniremoval.cli import app

    train = _clean_folder(tmp_path / "clean" / "train", 3, 0)
    val = _clean_folder(tmp_path / "clean" / "val", 2, 1)
    args = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}
    teacher = save_model(random_nafnet(0, **args), tmp_path / "t" / "haze.json", "nafnet", args, ["haze"])
    out = tmp_path / "abl"
    cmd = ["train", "ablation", "--teachers", f"haze={teacher}", "--config", str(TINY), "--out", str(out),
           "--rows", "all-in-one,contrast", "--eval-count", "2", "--eval-crop", "48",
           "--set", "untaught=[clean]", "--set", "run.steps=2", "--set", "run.val_every=2",
           "--set", f"data.clean_dir={train}", "--set", f"data.val_dir={val}", "--set", "data.epoch_size=12"]
    r = CliRunner().invoke(app, cmd)
    assert r.exit_code == 0, r.output

    res = json.loads((out / "ablation.json").read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert res["kinds"] == ["haze", "clean"] and res["mean_over"] == ["haze"]
    rows = {row["key"]: row["per_kind"] for row in res["rows"]}
    assert list(rows) == ["input", "teachers", "all-in-one", "contrast"]
    assert rows["input"]["clean"]["psnr"] == "inf" and abs(rows["input"]["clean"]["ssim"] - 1) < 1e-6
    assert set(rows["teachers"]) == {"haze"}  # no teacher for the untaught kind
    for key in ("all-in-one", "contrast"):
        assert set(rows[key]) == {"haze", "clean"}
        assert all(math.isfinite(m["psnr"]) for m in rows[key].values())

    md = (out / "ablation.md").read_text().splitlines()
    assert md[0].startswith("| row | haze PSNR | haze SSIM | clean PSNR | clean SSIM | mean PSNR (haze) |")
    input_row = next(line for line in md if line.startswith("| input |")).split("|")
    assert input_row[4].strip() == "inf" and input_row[6].strip() == f"{rows['input']['haze']['psnr']:.2f}"
