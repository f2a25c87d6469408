"""The two install paths (README, "Install").

CPU (`make install` / `demo` / `test`, `constraints.txt`, the extras of `.[all]`): no CUDA package anywhere.
GPU (`make install-gpu`, the `jax-cuda12` / `jax-cuda13` / `tensorflow-cuda` extras, README's commands): CUDA
builds of exactly the jax, jaxlib, tensorflow and torch versions that the CPU path pins.
No backend is involved, so these run once, in the JAX process.
"""

import os
import re
import shutil
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA = re.compile(r"nvidia-|cuda|\+cu\d|/whl/cu\d", re.IGNORECASE)
GPU_EXTRAS = {"jax-cuda12": ("jax", "cuda12"), "jax-cuda13": ("jax", "cuda13"),
              "tensorflow-cuda": ("tensorflow", "and-cuda")}

pytestmark = pytest.mark.jax


def cuda_lines(lines):
    """The lines (requirements, shell commands) that name a CUDA package, extra, build or index; comments aside."""
    return [line for line in lines if CUDA.search(line) and not line.lstrip().startswith("#")]


def _name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def constraint_pins(lines):
    """{package: version} of `name==version` lines, with a local build label (`+cpu`) dropped."""
    pins = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s+#]+)", line.strip())
        if match:
            pins[_name(match.group(1))] = match.group(2)
    return pins


def _pin(requirement):
    specs = list(requirement.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"{requirement} is not an exact pin"
    return specs[0].version


def gpu_pin_mismatches(extras, cpu_pins):
    """What in the GPU extras of `extras` ({extra: [requirement, ...]}) is missing or differs from `cpu_pins`."""
    problems = []
    for extra, (package, cuda_extra) in GPU_EXTRAS.items():
        requirements = {_name(r.name): r for r in map(Requirement, extras.get(extra, []))}
        if package not in requirements:
            problems.append(f"{extra}: no {package} requirement")
            continue
        if cuda_extra not in requirements[package].extras:
            problems.append(f"{extra}: {requirements[package]} lacks the [{cuda_extra}] extra")
        for name, requirement in requirements.items():
            if _pin(requirement) != cpu_pins.get(name):
                problems.append(f"{extra}: {requirement} but the CPU pin is {name}=={cpu_pins.get(name)}")
    return problems


def _extras():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)["project"]
    return project["dependencies"], project["optional-dependencies"]


def _expand(extra, extras):
    """The requirements of `extra`, with `kgen[...]` self-references expanded."""
    out = []
    for line in extras[extra]:
        requirement = Requirement(line)
        if requirement.name == "kgen":
            for inner in sorted(requirement.extras):
                out += _expand(inner, extras)
        else:
            out.append(line)
    return out


def _constraints():
    with open(os.path.join(ROOT, "constraints.txt")) as handle:
        return handle.read().splitlines()


def _make_n(*targets):
    """The commands `make` would run for `targets` (forced, not run)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    done = subprocess.run(["make", "-n", "-B", *targets], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_cuda_checker_flags_cuda_requirements_and_indexes_but_not_cpu_pins():
    flagged = ["jax[cuda12]==0.10.2", "nvidia-cublas-cu12==12.5.3.2", "torch==2.13.0+cu130",
               "tensorflow[and-cuda]==2.21.0", "pip install --index-url https://download.pytorch.org/whl/cu130 torch",
               "jax-cuda13-plugin==0.10.2"]
    clean = ["jax==0.10.2", "jaxlib==0.10.2", "torch==2.13.0+cpu", "tensorflow==2.21.0",
             "# --no-deps: its own dependencies would pull a CUDA torch"]
    assert cuda_lines(flagged) == flagged
    assert cuda_lines(clean) == []


def test_cpu_install_path_names_no_cuda_package():
    base, extras = _extras()
    assert cuda_lines(_constraints()) == []
    assert cuda_lines(base + _expand("all", extras)) == []
    assert not {"jax-cuda12", "jax-cuda13", "tensorflow-cuda"} & {
        e for r in extras["all"] for e in Requirement(r).extras}
    commands = _make_n("install", "demo", "test")
    assert any("-c constraints.txt" in line for line in commands)
    assert cuda_lines(commands) == []


def test_gpu_extras_pin_the_cpu_versions():
    _, extras = _extras()
    cpu = constraint_pins(_constraints())
    for name in ("jax", "jaxlib", "tensorflow", "torch"):
        assert name in cpu
        for extra in ("jax", "tensorflow", "torch"):  # the CPU extras agree with constraints.txt too
            for line in extras[extra]:
                requirement = Requirement(line)
                if _name(requirement.name) == name:
                    assert _pin(requirement) == cpu[name], line
    assert gpu_pin_mismatches(extras, cpu) == []


def test_gpu_pin_checker_catches_a_drifted_or_missing_pin():
    cpu = {"jax": "0.10.2", "jaxlib": "0.10.2", "tensorflow": "2.21.0"}
    drifted = {"jax-cuda12": ["jax[cuda12]==0.10.1", "jaxlib==0.10.2"],
               "jax-cuda13": ["jax==0.10.2", "jaxlib==0.10.2"],
               "tensorflow-cuda": ["tensorflow[and-cuda]==2.21.0"]}
    problems = gpu_pin_mismatches(drifted, cpu)
    assert len(problems) == 2
    assert "0.10.1" in problems[0] and "[cuda13]" in problems[1]
    assert gpu_pin_mismatches({}, cpu) == [f"{e}: no {p} requirement" for e, (p, _) in GPU_EXTRAS.items()]


def test_install_gpu_takes_the_pinned_torch_from_the_pytorch_cuda_index():
    torch = constraint_pins(_constraints())["torch"]
    _, extras = _extras()
    commands = _make_n("install-gpu")
    pip = [line for line in commands if "pip install" in line and "torch==" in line]
    assert len(pip) == 1 and f'"torch=={torch}"' in pip[0]
    assert re.search(r"--index-url https://download\.pytorch\.org/whl/cu\d+ ", pip[0])
    kgen = [line for line in commands if '-e ".[' in line]
    assert len(kgen) == 1 and "-c constraints.txt" not in kgen[0]  # its torch==...+cpu would refuse the CUDA torch
    named = set(re.search(r'-e "\.\[([^\]]*)\]"', kgen[0]).group(1).split(","))
    assert named <= set(extras) and {"jax-cuda13", "tensorflow-cuda", "torch"} <= named


def test_readme_gpu_commands_use_the_same_pins():
    torch = constraint_pins(_constraints())["torch"]
    _, extras = _extras()
    with open(os.path.join(ROOT, "README.md")) as handle:
        lines = [line for line in handle.read().splitlines() if line.startswith(".venv-gpu/bin/pip install")]
    assert len(lines) == 2
    assert f'"torch=={torch}"' in lines[0] and "--index-url https://download.pytorch.org/whl/cu" in lines[0]
    named = set(re.search(r'-e "\.\[([^\]]*)\]"', lines[1]).group(1).split(","))
    assert named <= set(extras) and "jax-cuda13" in named


def test_library_dependencies_are_ranges_that_hold_the_ci_pins():
    """pyproject declares ranges (kgen installs beside other libraries); constraints.txt pins what CI runs, and
    every pin lies inside its range. Keras stays within the 3.15 series that kgen's private touch points
    (kgen/backend/_keras_compat.py) are tested on."""
    dependencies, _ = _extras()
    pins = constraint_pins(_constraints())
    requirements = {_name(Requirement(line).name): Requirement(line) for line in dependencies}
    exact = [str(r) for r in requirements.values() if any(s.operator == "==" for s in r.specifier)]
    assert not exact, f"library dependencies pinned exactly: {exact}"
    for name, requirement in requirements.items():
        assert name in pins and requirement.specifier.contains(pins[name]), (requirement, pins.get(name))
    assert not requirements["keras"].specifier.contains("3.16.0")
    assert not requirements["keras"].specifier.contains("3.14.0")
