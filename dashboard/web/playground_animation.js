// The 2D playground's particle animation (dashboard/playground/animation.py fills
// playground_animation.html with D, then this script). Every panel's particles travel from
// noise (progress 0) to data (1) over the learned field (arrows) and the paths so far;
// positions between two stored states are interpolated linearly, so nothing goes back to the
// server. D: {n, box, qrange, size, grid, duration_ms, hold_ms, trails, palette[], colors,
// panels[{title, k, times[], states (int16 over [-qrange, qrange]), field (float32), fscale[],
// caption}]}; binary arrays are base64, little-endian.
// Colours follow the app's theme (common.js); each canvas is role="img" with a label built from its
// panel (model, t, particles, where they are) and #live announces play / pause / stop and the
// progress once the slider rests. Nothing plays by itself; under prefers-reduced-motion a play
// stops at the data instead of looping.
// Browser-test hooks: window.__frameTimes, __scrubLatencies, __drawMs, __play(on), __state().
function buf(b64){const s=atob(b64);const u=new Uint8Array(s.length);
 for(let i=0;i<s.length;i++)u[i]=s.charCodeAt(i);return u.buffer;}
const N=D.n,B=D.box,S=D.size,G=D.grid,Q=D.qrange/32767,sc=S/(2*B),dpr=window.devicePixelRatio||1;
const col=new Uint8Array(buf(D.colors));
const groups=D.palette.map((_,c)=>{const a=[];for(let i=0;i<N;i++)if(col[i]===c)a.push(2*i);
 return Int32Array.from(a);});
const M=Math.min(D.trails,N);
const P=D.panels.map((p,j)=>{const fig=document.createElement("figure");
 const cv=document.createElement("canvas");cv.setAttribute("role","img");
 cv.width=Math.round(S*dpr);cv.height=Math.round(S*dpr);cv.style.width=S+"px";cv.style.height=S+"px";cv.id="c"+j;
 const cap=document.createElement("figcaption");const b=document.createElement("b");b.textContent=p.title;
 cap.append(b,document.createElement("br"),document.createTextNode(p.caption));fig.append(cv,cap);
 document.getElementById("g").append(fig);
 return {K:p.k,x:new Int16Array(buf(p.states)),f:new Float32Array(buf(p.field)),fs:p.fscale,times:p.times,
  ctx:cv.getContext("2d"),cv,title:p.title,caption:p.caption,said:""};});
const slider=document.getElementById("p"),btn=document.getElementById("play");
const pv=document.getElementById("pv");
const fld=document.getElementById("fld"),pth=document.getElementById("pth");
window.__frameTimes=[];window.__scrubLatencies=[];window.__drawMs=[];
const reduce=matchMedia("(prefers-reduced-motion: reduce)");
let C={};  // the theme's colours for the canvases
function colours(){C={bg:theme.css("--bg")||"#fff",fg:theme.css("--fg")||"#141312",field:theme.css("--field"),
 path:theme.css("--path")};}
colours();
function stage(prog){return prog<=0?"still pure noise":prog>=1?"at the generated data":prog<0.5?
 "leaving the noise":"closing in on the data";}
function describe(Pn,prog,when){return Pn.title+": "+N+" particles at "+when+", "+stage(prog)+" (progress "
 +prog.toFixed(2)+" from noise to data)"+(fld.checked?", with the learned vector field":"")
 +(pth.checked?", with the paths of "+M+" particles so far":"")+"; "+Pn.caption;}
function panel(Pn,prog){const c=Pn.ctx,K=Pn.K,x=Pn.x,f=prog*(K-1),k=Math.min(Math.floor(f),K-2),a=f-k,b=1-a;
 c.setTransform(dpr,0,0,dpr,0,0);c.fillStyle=C.bg;c.fillRect(0,0,S,S);
 if(fld.checked){const F=Pn.f,o0=k*G*G*2,o1=(k+1)*G*G*2,sp=S/(G+1),fs=b*Pn.fs[k]+a*Pn.fs[k+1];c.beginPath();
  for(let r=0;r<G;r++)for(let q=0;q<G;q++){const o=(r*G+q)*2;
   let dx=(b*F[o0+o]+a*F[o1+o])*fs,dy=-(b*F[o0+o+1]+a*F[o1+o+1])*fs;const L=Math.hypot(dx,dy);
   if(L<0.8)continue;if(L>1.3*sp){dx*=1.3*sp/L;dy*=1.3*sp/L;}
   const px=(q+1)*sp,py=(r+1)*sp,hx=px+dx,hy=py+dy,an=Math.atan2(dy,dx),h=Math.min(5,0.4*Math.hypot(dx,dy));
   c.moveTo(px,py);c.lineTo(hx,hy);c.lineTo(hx-h*Math.cos(an-0.45),hy-h*Math.sin(an-0.45));
   c.moveTo(hx,hy);c.lineTo(hx-h*Math.cos(an+0.45),hy-h*Math.sin(an+0.45));}
  c.strokeStyle=C.field;c.lineWidth=1;c.stroke();}
 if(pth.checked){c.beginPath();
  for(let i=0;i<M;i++){let o=2*i;c.moveTo((x[o]*Q+B)*sc,(B-x[o+1]*Q)*sc);
   for(let j=1;j<=k;j++){o=(j*N+i)*2;c.lineTo((x[o]*Q+B)*sc,(B-x[o+1]*Q)*sc);}
   const e0=(k*N+i)*2,e1=((k+1)*N+i)*2;c.lineTo(((b*x[e0]+a*x[e1])*Q+B)*sc,(B-(b*x[e0+1]+a*x[e1+1])*Q)*sc);}
  c.strokeStyle=C.path;c.lineWidth=0.8;c.stroke();}
 const s0=k*N*2,s1=(k+1)*N*2;
 for(let g=0;g<groups.length;g++){const idx=groups[g];c.fillStyle=D.palette[g];
  for(let m=0;m<idx.length;m++){const i=idx[m];
   c.fillRect(((b*x[s0+i]+a*x[s1+i])*Q+B)*sc-1.1,(B-(b*x[s0+i+1]+a*x[s1+i+1])*Q)*sc-1.1,2.2,2.2);}}
 c.globalAlpha=0.8;c.fillStyle=C.bg;c.fillRect(0,0,74,20);c.globalAlpha=1;c.fillStyle=C.fg;
 c.font="13px sans-serif";const when=Pn.times[Math.round(f)];c.fillText(when,5,15);
 const label=describe(Pn,Math.round(prog*100)/100,when);  // changes with the shown t, not every frame
 if(label!==Pn.said&&(!playing||Math.round(f)!==Pn.shown)){Pn.said=label;Pn.shown=Math.round(f);
  Pn.cv.setAttribute("aria-label",label);}}
let prog=0,playing=false,last=null,hold=0;
function draw(p){const t0=performance.now();for(const Pn of P)panel(Pn,p);pv.textContent=p.toFixed(2);
 slider.setAttribute("aria-valuetext",p.toFixed(2)+" from noise (0) to data (1)");
 window.__drawMs.push(performance.now()-t0);if(window.__drawMs.length>4000)window.__drawMs.shift();}
function tick(ts){if(!playing){last=null;return;}
 if(last!==null){const dt=ts-last;window.__frameTimes.push(dt);
  if(window.__frameTimes.length>4000)window.__frameTimes.shift();
  if(prog>=1){hold+=dt;if(reduce.matches){setPlaying(false);return;}
   if(hold>D.hold_ms){prog=0;hold=0;}}
  else{prog=Math.min(1,prog+dt/D.duration_ms);if(prog>=1)announce("At the data: progress 1.00");}}
 last=ts;slider.value=Math.round(prog*1000);draw(prog);requestAnimationFrame(tick);}
function where(){return "progress "+prog.toFixed(2)+" from noise to data";}
function setPlaying(on){playing=on;btn.textContent=on?"❚❚ Pause":"▶ Play";
 if(on){if(prog>=1)prog=0;hold=0;last=null;requestAnimationFrame(tick);}
 else draw(prog);  // the canvases' labels catch up with the frame shown
 announce(on?"Playing from "+where():"Paused at "+where());}
btn.addEventListener("click",()=>setPlaying(!playing));
document.getElementById("stop").addEventListener("click",()=>{playing=false;btn.textContent="▶ Play";prog=0;hold=0;
 slider.value=0;draw(0);announce("Stopped: back to the noise, progress 0.00");});
slider.addEventListener("input",e=>{if(playing)setPlaying(false);prog=slider.value/1000;draw(prog);
 window.__scrubLatencies.push(performance.now()-e.timeStamp);announce(where());});
fld.addEventListener("change",()=>draw(prog));pth.addEventListener("change",()=>draw(prog));
window.addEventListener("themechange",()=>{colours();draw(prog);});
window.__play=setPlaying;window.__state=()=>({prog:prog,playing:playing,panels:P.length,n:N});
document.getElementById("png").addEventListener("click",()=>{const w=P[0].cv.width,h=P[0].cv.height;
 const out=document.createElement("canvas");out.width=w*P.length+8*(P.length-1);out.height=h;
 const g=out.getContext("2d");g.fillStyle=C.bg;g.fillRect(0,0,out.width,out.height);
 P.forEach((Pn,j)=>g.drawImage(Pn.cv,j*(w+8),0));const a=document.createElement("a");
 a.href=out.toDataURL("image/png");a.download="playground_"+prog.toFixed(2)+".png";a.click();});
draw(0);
