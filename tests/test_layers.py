"""The package's imports follow its layers: no module imports, even inside a
function, a module that imports it back (``if TYPE_CHECKING:`` imports never run)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gan_mnist"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of ``package`` -> the package's modules it imports anywhere."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                node.body = []
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gan_mnist"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("gan_mnist")}
        graph[name] = found - {name, "gan_mnist"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each as the modules on it."""
    found = []

    def walk(start, node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append(path)
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for module in sorted(graph):
        walk(module, module, [module])
    return found


def test_no_import_circle_even_through_a_function_level_import():
    assert cycles(import_graph()) == []


def test_the_lowest_rooms_import_nothing_heavy():
    # The lock, the quick CLI checks and the writers use these before TensorFlow or
    # the registries load.
    graph = import_graph()
    assert graph["gan_mnist.files"] == set() and graph["gan_mnist.errors"] == set()
    assert graph["gan_mnist.guards"] <= {
        "gan_mnist.errors",
        "gan_mnist.files",
        "gan_mnist.runfolder",
    }
    assert "gan_mnist.config" not in graph["gan_mnist.runfolder"] | graph["gan_mnist.data"]
