#!/usr/bin/env bash
# Copy the console's front-end assets from node_modules (installed by `npm ci` from the committed
# package-lock.json) into em_service/console/static/vendor/, which the API serves itself (no CDN).
# The folder is git-ignored; install.sh runs this. GOV.UK/MoJ stylesheets refer to /assets/…:
# those URLs are rewritten to the vendor folder.
set -euo pipefail
cd "$(dirname "$0")/.."
src=node_modules
out=em_service/console/static/vendor
rm -rf "$out"
mkdir -p "$out"/{govuk,moj,leaflet/images,assets/fonts,assets/images,axe}
cp "$src"/govuk-frontend/dist/govuk/govuk-frontend.min.css "$out"/govuk/
cp "$src"/govuk-frontend/dist/govuk/govuk-frontend.min.js "$out"/govuk/
cp "$src"/govuk-frontend/dist/govuk/assets/fonts/* "$out"/assets/fonts/
cp "$src"/govuk-frontend/dist/govuk/assets/images/* "$out"/assets/images/
cp "$src"/@ministryofjustice/frontend/moj/moj-frontend.min.css "$out"/moj/
cp "$src"/@ministryofjustice/frontend/moj/moj-frontend.min.js "$out"/moj/
cp "$src"/@ministryofjustice/frontend/moj/assets/images/* "$out"/assets/images/
cp "$src"/leaflet/dist/leaflet.css "$src"/leaflet/dist/leaflet.js "$out"/leaflet/
cp "$src"/leaflet/dist/images/* "$out"/leaflet/images/
cp "$src"/axe-core/axe.min.js "$out"/axe/
for css in "$out"/govuk/govuk-frontend.min.css "$out"/moj/moj-frontend.min.css; do
  sed -i 's#url(/assets/#url(../assets/#g' "$css"
done
