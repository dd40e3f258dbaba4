"""`files.download` sends a file to the browser in Colab; here it only says so."""


def download(path: str) -> None:
    print(f"(download of {path} offered)")
