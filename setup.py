"""Packaging for TinyTorch, in the nbdev template style: every setting comes from settings.ini."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

HERE = Path(__file__).resolve().parent
config = ConfigParser(delimiters=["="])
config.read(HERE / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

required = ["version", "description", "keywords", "author", "author_email", "license", "min_python"]
missing = [key for key in required if not cfg.get(key)]
if missing:
    raise SystemExit(f"settings.ini is missing {missing}; add them under [DEFAULT]")

min_python = cfg["min_python"]
setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    keywords=cfg["keywords"].split(),
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    python_requires=f">={min_python}",
    packages=setuptools.find_packages(include=[cfg["lib_path"], cfg["lib_path"] + ".*"]),
    include_package_data=True,
    package_data={cfg["lib_path"]: ["assets/*", "assets/**/*"]},
    install_requires=cfg.get("requirements", "").split(),
    entry_points={"console_scripts": cfg.get("console_scripts", "").split()},
    zip_safe=False,
)
