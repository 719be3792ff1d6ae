"""device.report: plain data that serialises, and what its few properties compute."""

from __future__ import annotations

import json

from torchmagic.device.report import CreatedTensor, DeviceReport, DeviceRun, ModuleStat, RepeatStats, Timing


def test_best_time_and_speedup() -> None:
    cpu = DeviceRun(device="cpu", requested="cpu", first=Timing(40.0, 40.0))
    gpu = DeviceRun(device="cuda:0", requested="cuda", first=Timing(1.0, 10.0, 9.0))
    rep = DeviceReport(runs=[cpu, gpu], cell_runs=2, compare=True)
    assert cpu.best_ms == 40.0 and rep.speedup(gpu) == 4.0 and rep.speedup(cpu) == 1.0
    gpu.repeats = RepeatStats(2, 2, "device", (2.0, 3.0), (5.0, 8.0), 2.0, 2.5, 0.7)
    assert gpu.best_ms == 5.0 and rep.speedup(gpu) == 8.0  # the best repeat's wall time
    assert rep.speedup(DeviceRun(device="meta", requested="meta")) is None


def test_created_tensors_count_alive_and_freed() -> None:
    t = CreatedTensor((64, 20), "float32", "cpu", 5120, 3, "out = model(xb)", "F.linear", count=5, alive=1,
                      names=("out",), module="model.0")
    assert t.freed == 4
    assert CreatedTensor((2,), "float32", "cpu", 8, 1, "", "torch.ones").freed == 1  # one made, none alive


def test_a_report_with_modules_is_json() -> None:
    row = ModuleStat("enc.layers.0–11", "TransformerEncoderLayer", 1, 12, 117.0, 98.5, 1 << 20, 1 << 19, 0,
                     9_477_120, "(8, 32, 256)", instances=12, name="layers.0–11")
    run = DeviceRun(device="cpu", requested="cpu", modules=[row], modules_unfolded=[row], modules_total=109)
    data = json.loads(json.dumps(DeviceReport(runs=[run], cell_runs=1).to_dict()))
    (shown,) = data["runs"][0]["modules"]
    assert shown["instances"] == 12 and shown["backward_ms"] == 98.5 and data["runs"][0]["modules_total"] == 109
