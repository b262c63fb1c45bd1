"""The web server: an HTTP API and an offline page over a conditional latent GAN run.

`create_app` (in `zspace.web.app`) needs the optional `web` extra (FastAPI, uvicorn).
"""
