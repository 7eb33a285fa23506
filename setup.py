"""Packaging for kddcup24, driven by settings.ini (the nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

def reqs(key):
    "Space-separated requirement list `key` from settings.ini."
    return cfg.get(key, "").split()

licenses = {"apache2": "Apache-2.0"}  # an SPDX expression (setuptools warns on license classifiers)
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable", "6 - Mature", "7 - Inactive"]
lic = licenses[cfg["license"]]
extras = {k: reqs(f"{k}_requirements") for k in ("train", "merge", "quant", "autoawq", "vllm", "gpu", "docs", "dev")}
# `cpu`: everything the CPU pipeline runs with (training, merging, llm-compressor AWQ, docs; vLLM lives in its own venv)
extras["cpu"] = extras["train"] + extras["merge"] + extras["quant"] + extras["docs"]
# The paper's setting on GPUs, two environments (vLLM pins compressed-tensors 0.17, llm-compressor 0.19; no extra holds both):
# `gpu` trains, merges and quantizes (.venv), `serve` is vLLM alone (.venv-vllm). `make gpu-env` builds both.
extras["gpu"] = extras["train"] + extras["merge"] + extras["quant"] + extras["gpu"]
extras["serve"] = extras["vllm"]
extras["all"] = extras["cpu"] + extras["dev"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license=lic,
    classifiers=[f"Development Status :: {statuses[int(cfg['status'])]}",
                 f"Natural Language :: {cfg['language']}", "Programming Language :: Python :: 3"],
    url=cfg["git_url"],
    author=cfg["author"],
    author_email=cfg["author_email"],
    keywords=cfg["keywords"],
    # the data folders are listed as packages of their own, so setuptools does not warn that they are importable but undeclared
    packages=setuptools.find_packages(include=["kddcup24", "kddcup24.*"]) + ["kddcup24.recipes", "kddcup24.recipes.accelerate", "kddcup24.model_configs", "kddcup24.measured"],
    package_dir={"": "."},  # a flat layout: the editable install is a plain .pth entry, with no finder (and no warning)
    include_package_data=True,
    package_data={"kddcup24.recipes": ["*.yaml"], "kddcup24.recipes.accelerate": ["*.yaml"], "kddcup24.model_configs": ["*.json"], "kddcup24.measured": ["*.json"]},
    install_requires=reqs("requirements"),
    extras_require=extras,
    python_requires=">=" + cfg["min_python"],
    zip_safe=False,
    entry_points={"console_scripts": cfg["console_scripts"].split(), "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
