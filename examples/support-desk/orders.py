"""The shop's order system, as far as this example needs one: a few orders, and a tool that looks one up.

``lookup_order`` is a plain function with a docstring: listed under ``tools`` in ``chatplane.json`` it joins the
tools a chatplane agent kind may use (the ``helpdesk`` agent there), and the ``desk`` graph calls it directly.
"""

from __future__ import annotations

ORDERS: dict[str, dict[str, str | float]] = {
    "1042": {"item": "wireless headphones", "total": 59.0, "status": "delivered on 2 May"},
    "1043": {"item": "USB-C charger", "total": 19.5, "status": "shipped, arriving Friday"},
    "1044": {"item": "mechanical keyboard", "total": 129.0, "status": "being packed"},
}


def lookup_order(order_id: str) -> str:
    """Look up an order by its number (e.g. "1042"): what was bought, its total and where it is."""
    order = ORDERS.get(order_id.strip().lstrip("#"))
    if order is None:
        return f"There is no order {order_id}."
    return f"Order {order_id}: {order['item']}, ${float(order['total']):.2f}, {order['status']}."


def order_total(order_id: str) -> float | None:
    order = ORDERS.get(order_id)
    return float(order["total"]) if order is not None else None
