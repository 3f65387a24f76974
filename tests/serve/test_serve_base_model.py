"""A model saved without a chat template (a base model, as MMed-Llama 3) is served through the study's prompt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from mmedkit.alpaca import FORMAT_NAME
from mmedkit.models.hf import HFModel
from mmedkit.serve.openai_api import create_app


def test_base_model_answers_through_the_api_and_says_how_it_is_prompted(tiny_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    base = Path(shutil.copytree(tiny_model_dir, tmp_path / "base"))
    cfg_path = base / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    (base / "chat_template.jinja").unlink(missing_ok=True)
    (base / "chat_template.json").unlink(missing_ok=True)
    model = HFModel(str(base), device="cpu", dtype="float32")
    assert not getattr(model.tokenizer, "chat_template", None)
    with TestClient(create_app(model, model_id="base", allowed_hosts=None)) as client:
        card = client.get("/v1/models").json()["data"][0]
        assert card["id"] == "base" and card["prompt_format"] == FORMAT_NAME
        reply = client.post("/v1/chat/completions", json={
            "model": "base", "max_tokens": 5, "messages": [{"role": "user", "content": "Fever and cough?"}]})
        assert reply.status_code == 200, reply.text
        assert isinstance(reply.json()["choices"][0]["message"]["content"], str)
