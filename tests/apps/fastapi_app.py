"""A FastAPI app for uvicorn under wrap."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name}
