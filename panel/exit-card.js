// The exit card on a lane: the waiting car's entry time and lane, its stay, the bill's lines
// next to the fee due (payable, each discount with its reason, prepaid, due), how it may pay on
// this lane, and the camera's photos of its exit and its entry. Also the plate correction: the
// attendant types the right plate for a misread car, with a reason, and the lane decides again.
import { yuan, lotTime, duration } from "./format.js";

/** A coupon's reason in the page's language. */
function couponText(coupon, label) {
  const card = (key) => label("card", key);
  switch (coupon?.kind) {
    case "amount":
      return `${card("couponAmount")} ${yuan(coupon.fen)}`;
    case "minutes":
      return `${card("couponMinutes")} ${coupon.minutes} ${card("minutes")}`;
    case "percent":
      return `${card("couponPercent")} ${coupon.percent}%`;
    case "free":
      return card("couponFree");
    default:
      return card("coupon");
  }
}

function row(name, value, key) {
  const tr = document.createElement("tr");
  tr.dataset.line = key;
  const th = document.createElement("th");
  th.textContent = name;
  const td = document.createElement("td");
  td.textContent = value;
  tr.append(th, td);
  return tr;
}

/**
 * `deps`: `$` (query in a root), `label(group, key)` (the page's language), `zone()` (the lot's
 * time zone), `auth()` (the token, for photo links when reads need it), `post` (the page's
 * audited POST with its result line), `reasonNeeded(card, text)` to ask for a reason.
 */
export function createExitCard(deps) {
  const { $, label, zone, auth } = deps;
  const card = (key) => label("card", key);

  /** A photo link the <img> can load: reads need the token from beyond loopback (`?access_token=`). */
  function photoSrc(url) {
    const { token } = auth();
    return token ? `${url}?access_token=${encodeURIComponent(token)}` : url;
  }

  function renderPhoto(figure, photo, noneText) {
    const img = $("img", figure);
    const none = $(".no-photo", figure);
    if (photo) {
      const src = photoSrc(photo.url);
      if (img.getAttribute("src") !== src) img.setAttribute("src", src);
      img.hidden = false;
      img.alt = $("figcaption", figure).textContent;
      figure.dataset.photo = photo.id;
      none.hidden = true;
    } else {
      img.removeAttribute("src");
      img.hidden = true;
      delete figure.dataset.photo;
      none.textContent = noneText;
      none.hidden = false;
    }
  }

  /** Fills the card's exit part from `lane.vehicle.card` (hidden when no car waits at an exit). */
  function render(el, lane, lanesById) {
    const box = $(".exit-card", el);
    const info = lane.direction === "out" ? lane.vehicle?.card : undefined;
    const read = $(".read-plate", el);
    const readPlate = info?.readPlate ?? lane.vehicle?.readPlate;
    read.hidden = !readPlate;
    read.textContent = readPlate ? `${card("readPlate")}: ${readPlate}` : "";
    box.hidden = !info;
    if (!info) return;
    const set = (selector, text) => {
      const target = $(selector, box);
      if (target.textContent !== text) target.textContent = text;
    };
    set(".card-enter", typeof info.enterAtMs === "number" ? lotTime(info.enterAtMs, zone()) : card("noEntry"));
    set(".card-stay", typeof info.stayMs === "number" ? duration(info.stayMs) : "—");
    const entryLane = info.entryLaneId ? (info.entryLaneName ?? lanesById.get(info.entryLaneId) ?? info.entryLaneId) : "—";
    set(".card-entry-lane", entryLane);
    set(".card-payby", (info.payBy ?? []).map((way) => card(`pay-${way}`)).join(" · "));

    const lines = [];
    const bill = info.bill;
    if (bill) {
      lines.push(row(card("payable"), yuan(bill.payableFen), "payable"));
      for (const [i, line] of (bill.discounts ?? []).entries()) {
        const reason = couponText(line.coupon, label);
        lines.push(row(`${card("discount")} · ${reason}${line.applied ? "" : ` (${card("notApplied")})`}`, `−${yuan(line.discountFen)}`, `discount-${i}`));
      }
      if (!bill.discounts?.length && bill.discountFen) lines.push(row(card("discount"), `−${yuan(bill.discountFen)}`, "discount"));
      lines.push(row(card("prepaid"), bill.prepaidFen ? `−${yuan(bill.prepaidFen)}` : yuan(0), "prepaid"));
      lines.push(row(card("due"), yuan(bill.dueFen), "due"));
    } else {
      lines.push(row(card("due"), card("billPending"), "due"));
    }
    $(".bill-lines tbody", box).replaceChildren(...lines);

    const serial = info.photos?.camera === "serial";
    renderPhoto($(".photo-exit", box), info.photos?.exit, serial ? card("serialNoPhoto") : card("noPhoto"));
    const noEntryPhoto = info.entryDeviceId ? `${card("entryPhotoElsewhere")} ${info.entryDeviceId}` : info.entryLaneId ? card("noEntryPhoto") : card("noEntry");
    renderPhoto($(".photo-entry", box), info.photos?.entry, noEntryPhoto);
  }

  /** The correction: a plate and a reason, both required, then the box decides again. */
  async function correct(el, laneId) {
    const plateInput = $(".correct-plate", el);
    const reasonInput = $(".correct-reason", el);
    const plate = plateInput.value.trim();
    const reason = reasonInput.value.trim();
    if (!plate) {
      deps.ask(el, card("plateNeeded"));
      plateInput.focus();
      return;
    }
    if (!reason) {
      deps.ask(el, card("correctReasonNeeded"));
      reasonInput.focus();
      return;
    }
    const done = await deps.post(
      `/api/lanes/${encodeURIComponent(laneId)}/correct-plate`,
      { plate, operator: auth().operator || "panel", reason },
      el,
      () => `${label("ui", "done")}: ${card("corrected")} ${plate}`,
    );
    if (done) {
      plateInput.value = "";
      reasonInput.value = "";
    }
  }

  function wire(el, laneId) {
    const button = $("[data-correct]", el);
    button.addEventListener("click", async () => {
      if (button.dataset.busy) return;
      button.dataset.busy = "1";
      button.disabled = true;
      try {
        await correct(el, laneId);
      } finally {
        delete button.dataset.busy;
        button.disabled = false;
      }
    });
    $(".correct-plate", el).addEventListener("keydown", (e) => e.key === "Enter" && $(".correct-reason", el).focus());
    $(".correct-reason", el).addEventListener("keydown", (e) => e.key === "Enter" && button.click());
  }

  return { render, wire };
}
