"""One app, two versions: `python diff_app.py v1|v2 STANDIN_URL`. v2 is the "after a change" run with a planted
regression: /search got slow, /pay fails one request in three, /ask's prompt grew twentyfold; /items did not change."""

import sys
import time

import openai
from flask import Flask

VERSION = sys.argv[1]
app = Flask(__name__)
llm = openai.OpenAI(base_url=f"{sys.argv[2]}/v1", api_key="test", max_retries=0, timeout=20)
PROMPT = "Suggest one item for a customer who bought green tea."
calls = 0


@app.get("/items")
def items() -> str:
    return "tea, cups"


@app.get("/search")
def search() -> str:
    time.sleep(0.15 if VERSION == "v2" else 0.005)
    return "found"


@app.get("/pay")
def pay() -> tuple[str, int]:
    global calls
    calls += 1
    return ("declined", 500) if VERSION == "v2" and calls % 3 == 0 else ("paid", 200)


@app.get("/ask")
def ask() -> str:
    prompt = PROMPT * (20 if VERSION == "v2" else 1)
    reply = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], max_tokens=40
    )
    return reply.choices[0].message.content or ""


if __name__ == "__main__":
    client = app.test_client()
    for _round in range(9):
        for route in ("/items", "/search", "/pay", "/ask"):
            client.get(route)
