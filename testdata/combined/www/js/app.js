// Loads the item list from the API and shows it.
document.addEventListener("DOMContentLoaded", async () => {
  const res = await fetch("/api/v1/items", { credentials: "include" });
  if (!res.ok) return;
  const items = await res.json();
  const ul = document.createElement("ul");
  for (const it of items) {
    const li = document.createElement("li");
    li.textContent = it.name;
    ul.append(li);
  }
  document.body.append(ul);
});
